// Fake `wx` runtimes for the tests (kept outside test/ so that `node --test
// test/` does not run this file as a test).
//
// createStubWx(handler): wx.request is answered by a JS function — for unit
// tests. createHttpWx(): wx.request does real HTTP with node's http module —
// for the integration test against a real Caddy. Both count wx.login calls,
// hand out codes code-1, code-2, … and record every request made.
'use strict';

const http = require('node:http');
const https = require('node:https');
const querystring = require('node:querystring');

function createBase(codePrefix) {
  const store = new Map();
  const wx = {
    loginCalls: 0,
    requests: [],
    login(opts) {
      wx.loginCalls++;
      const code = (codePrefix || 'code-') + wx.loginCalls;
      setImmediate(() => opts.success && opts.success({ code, errMsg: 'login:ok' }));
    },
    getStorageSync(key) {
      return store.has(key) ? store.get(key) : '';
    },
    setStorageSync(key, value) {
      // The real storage keeps a serialized copy, not the object itself.
      store.set(key, JSON.parse(JSON.stringify(value)));
    },
    removeStorageSync(key) {
      store.delete(key);
    },
    storage: store,
  };
  return wx;
}

function headerValue(header, name) {
  if (!header) return undefined;
  const lower = name.toLowerCase();
  for (const k of Object.keys(header)) if (k.toLowerCase() === lower) return header[k];
  return undefined;
}

// wx.request's body encoding: strings as they are, objects as JSON unless the
// content-type says form, GET data as a query string.
function encode(opts) {
  const method = (opts.method || 'GET').toUpperCase();
  let url = opts.url;
  let body;
  const data = opts.data;
  if (data !== undefined && data !== null) {
    if (method === 'GET') {
      const q = typeof data === 'string' ? data : querystring.stringify(data);
      if (q) url += (url.includes('?') ? '&' : '?') + q;
    } else if (typeof data === 'string') {
      body = data;
    } else if (data instanceof ArrayBuffer) {
      body = Buffer.from(data);
    } else if (/x-www-form-urlencoded/i.test(headerValue(opts.header, 'content-type') || '')) {
      body = querystring.stringify(data);
    } else {
      body = JSON.stringify(data);
    }
  }
  return { method, url, body };
}

function decode(text, dataType) {
  if (dataType && dataType !== 'json') return text;
  try { return JSON.parse(text); } catch { return text; }
}

// handler(req) returns {statusCode, data, header} (or a Promise of it);
// returning {fail: 'errMsg'} or throwing makes wx.request call `fail`.
function createStubWx(handler) {
  const wx = createBase();
  wx.request = (opts) => {
    const { method, url, body } = encode(opts);
    const rec = {
      method,
      url,
      path: new URL(url).pathname,
      header: Object.assign({}, opts.header),
      body: body === undefined ? undefined : decode(String(body)),
      timeout: opts.timeout,
    };
    rec.authorization = headerValue(rec.header, 'authorization');
    wx.requests.push(rec);
    setImmediate(async () => {
      let res;
      try {
        res = await handler(rec);
      } catch (e) {
        res = { fail: e.message };
      }
      if (res && res.fail) return opts.fail && opts.fail({ errMsg: 'request:fail ' + res.fail });
      opts.success && opts.success({
        statusCode: res.statusCode,
        data: res.data === undefined ? '' : res.data,
        header: res.header || {},
      });
    });
  };
  return wx;
}

// codePrefix lets each test have its own users: codes <prefix>1, <prefix>2, …
function createHttpWx(codePrefix) {
  const wx = createBase(codePrefix);
  wx.request = (opts) => {
    const { method, url, body } = encode(opts);
    const u = new URL(url);
    const rec = { method, url, path: u.pathname, header: Object.assign({}, opts.header), statusCode: null };
    rec.authorization = headerValue(rec.header, 'authorization');
    wx.requests.push(rec);
    const headers = Object.assign({}, opts.header);
    if (body !== undefined && !headerValue(headers, 'content-type')) headers['content-type'] = 'application/json';
    const lib = u.protocol === 'https:' ? https : http;
    const req = lib.request(u, { method, headers, agent: false, timeout: opts.timeout || 15000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        rec.statusCode = res.statusCode;
        const text = Buffer.concat(chunks).toString('utf8');
        opts.success && opts.success({
          statusCode: res.statusCode,
          data: decode(text, opts.dataType),
          header: res.headers,
          errMsg: 'request:ok',
        });
      });
      res.on('error', (e) => opts.fail && opts.fail({ errMsg: 'request:fail ' + e.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => opts.fail && opts.fail({ errMsg: 'request:fail ' + e.message }));
    if (body !== undefined) req.write(body);
    req.end();
  };
  return wx;
}

module.exports = { createStubWx, createHttpWx, headerValue };
