/*
 * wechat-auth.js — the mini program half of the wechat_auth Caddy module.
 *
 * Copy this one file into your mini program. It logs in with wx.login, keeps
 * the token Caddy hands back, attaches it to every request, and logs in again
 * (once) when Caddy says the token is no longer good. No dependencies; it
 * uses only wx.login, wx.request and wx.*StorageSync, so it also runs in Node
 * when a fake `wx` is provided (global `wx`, or the `wx` option).
 *
 * Written without async/await or object spread so that it runs on old base
 * libraries without the "enhanced compile" setting.
 */
'use strict';

var DEFAULT_STORAGE_KEY = 'wechat_auth_token';

// wechat_auth's 401 error codes that mean "your token is no good, log in
// again". Its other 401s (invalid_code) are not retried.
var RELOGIN_ERRORS = { unauthorized: true, invalid_token: true, session_expired: true };

// wechat_auth's challenge on every 401: a Bearer challenge whose realm is
// wechat_auth, among any other challenges and parameters.
var CHALLENGE = /(?:^|,)\s*bearer\s+(?:[a-z0-9_.-]+\s*=\s*(?:"[^"]*"|[^\s,"]*)\s*,\s*)*realm\s*=\s*"wechat_auth"\s*(?:,|$)/i;

// After a fresh token was refused too (a proxy dropping Authorization, a
// server refusing every token), this long without a new login: each
// login costs a wx.login and a code exchange against WeChat's quota.
var REFUSED_FRESH_MS = 30 * 1000;

// A login refused for a reason another login at once would meet again
// (a ban, WeChat's rate limit, the server or WeChat down) is not tried
// again for the answer's Retry-After, or this long without one.
var LOGIN_HOLD_MS = 30 * 1000;
// A Retry-After longer than this (a CDN's or firewall's day) holds logins
// this long only.
var LOGIN_HOLD_MAX_MS = 5 * 60 * 1000;

// How long a login may take, wx.login included, when createAuth is given
// no timeout: one that never ends must not hold every later request.
var DEFAULT_LOGIN_TIMEOUT_MS = 60 * 1000;
var HELD_STATUSES = { 403: true, 429: true, 500: true, 502: true, 503: true, 504: true };

// A token this close to its expiry is treated as expired, so a request does
// not leave with a token that runs out on the way.
var EXPIRY_MARGIN_MS = 30 * 1000;

function findWx(explicit) {
  if (explicit) return explicit;
  if (typeof wx !== 'undefined' && wx) return wx; // eslint-disable-line no-undef
  if (typeof globalThis !== 'undefined' && globalThis.wx) return globalThis.wx;
  throw new Error('wechat-auth: no `wx` object (run inside a mini program, or set global.wx)');
}

function isAbsolute(url) {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(url);
}

function joinURL(base, path) {
  if (isAbsolute(path) || !base) return path;
  return base.replace(/\/+$/, '') + (path.charAt(0) === '/' ? path : '/' + path);
}

// wx.request parses JSON bodies itself (dataType 'json'), but leaves a
// string when parsing fails or the runtime did not parse; accept both.
function parseData(data) {
  if (typeof data !== 'string') return data;
  var s = data.trim();
  if (s.charAt(0) !== '{' && s.charAt(0) !== '[') return data;
  try { return JSON.parse(s); } catch (e) { return data; }
}

function errorCode(data) {
  var d = parseData(data);
  return d && typeof d === 'object' && typeof d.error === 'string' ? d.error : undefined;
}

// A header's value, whatever the case of its name (platforms differ); a
// header sent several times may arrive as an array.
function headerValue(header, name) {
  var lower = name.toLowerCase();
  var keys = header ? Object.keys(header) : [];
  for (var i = 0; i < keys.length; i++) {
    if (keys[i].toLowerCase() !== lower) continue;
    var v = header[keys[i]];
    return Array.isArray(v) ? v.join(', ') : String(v);
  }
  return '';
}

// Whether a 401 says "log in again". Only wechat_auth's own 401s do: each
// carries its challenge, WWW-Authenticate: Bearer realm="wechat_auth"
// (nginx's auth_request, Traefik and Envoy pass it on), and the upstream's
// own 401s do not, whatever their error code. Among wechat_auth's, the JSON
// error code tells a refused token from a refused phone code; nginx's
// auth_request may put its own HTML page there instead, which is a token's.
function needsLogin(res) {
  if (res.statusCode !== 401) return false;
  if (!CHALLENGE.test(headerValue(res.header, 'www-authenticate'))) return false;
  var code = errorCode(res.data);
  return code === undefined || Object.prototype.hasOwnProperty.call(RELOGIN_ERRORS, code);
}

function httpError(res, what) {
  var data = parseData(res.data);
  var code = errorCode(data);
  var msg = (data && typeof data === 'object' && data.message) ||
    (what + ' failed with HTTP ' + res.statusCode + (code ? ' (' + code + ')' : ''));
  var err = new Error(msg);
  err.statusCode = res.statusCode;
  err.code = code;
  err.data = data;
  err.header = res.header;
  // Seconds to wait before trying again, as a 429 or 503 says.
  var wait = Number(headerValue(res.header, 'retry-after'));
  if (headerValue(res.header, 'retry-after') !== '' && isFinite(wait) && wait >= 0) err.retryAfter = wait;
  return err;
}

function ok(status) {
  return status >= 200 && status < 300;
}

// Copies headers without any Authorization, whatever its case.
function headersWithout(header, name) {
  var out = {};
  var lower = name.toLowerCase();
  if (header) {
    Object.keys(header).forEach(function (k) {
      if (k.toLowerCase() !== lower) out[k] = header[k];
    });
  }
  return out;
}

function hasHeader(header, name) {
  var lower = name.toLowerCase();
  return Object.keys(header).some(function (k) { return k.toLowerCase() === lower; });
}

// Reads what login() stored. Also accepts a bare token string (or a JSON
// string of the record), so a token put there by other code still works.
function readRecord(raw) {
  if (!raw) return null;
  if (typeof raw === 'string') {
    var s = raw.trim();
    if (s.charAt(0) === '{') {
      try { raw = JSON.parse(s); } catch (e) { return { token: s }; }
    } else {
      return { token: s };
    }
  }
  if (typeof raw !== 'object' || typeof raw.token !== 'string' || !raw.token) return null;
  return raw;
}

function createAuth(options) {
  options = options || {};
  var baseURL = options.baseURL || '';
  var appid = options.appid;
  var routePrefix = (options.routePrefix || '/wx').replace(/\/+$/, '');
  var storageKey = options.storageKey || DEFAULT_STORAGE_KEY;
  var explicitWx = options.wx;
  var timeout = options.timeout;

  var loginInFlight = null;
  // The last refused login and until when it holds (see LOGIN_HOLD_MS).
  var heldError = null;
  var heldUntil = 0;
  // The login's record when wx.setStorageSync refused it (storage full):
  // kept for this run of the mini program, so the login is not redone.
  var unstored = null;
  // The token a re-login gave that was refused right away, and when.
  var refusedToken = null;
  var refusedAt = 0;
  // Bumped by logout(): what a request or login began before it does not
  // log in again, nor store a token.
  var generation = 0;

  function api() { return findWx(explicitWx); }

  function route(name) {
    return joinURL(baseURL, routePrefix + '/' + name);
  }

  // One wx.request as a Promise. Network failures reject; every HTTP status
  // resolves.
  function send(opts) {
    return new Promise(function (resolve, reject) {
      var req = Object.assign({}, opts, {
        success: function (res) {
          resolve({ statusCode: res.statusCode, data: res.data, header: res.header || res.headers || {} });
        },
        fail: function (res) {
          var err = new Error('wx.request failed: ' + ((res && res.errMsg) || 'network error'));
          err.errMsg = res && res.errMsg;
          reject(err);
        }
      });
      delete req.complete;
      api().request(req);
    });
  }

  function postJSON(url, body, token) {
    var header = { 'content-type': 'application/json' };
    if (token) header.Authorization = 'Bearer ' + token;
    var req = { url: url, method: 'POST', header: header };
    if (body !== undefined) req.data = body;
    if (timeout) req.timeout = timeout;
    return send(req);
  }

  function storedRecord() {
    if (unstored) return unstored;
    var raw;
    try { raw = api().getStorageSync(storageKey); } catch (e) { return null; }
    return readRecord(raw);
  }

  function store(rec) {
    try {
      api().setStorageSync(storageKey, rec);
      unstored = null;
    } catch (e) {
      unstored = rec;
      // What storage still holds is an older token.
      try { api().removeStorageSync(storageKey); } catch (e2) { /* kept in memory all the same */ }
    }
  }

  function usable(rec) {
    return !!rec && !(typeof rec.expiresAt === 'number' && Date.now() >= rec.expiresAt - EXPIRY_MARGIN_MS);
  }

  function getToken() {
    var rec = storedRecord();
    return usable(rec) ? rec.token : null;
  }

  function wxLogin() {
    return new Promise(function (resolve, reject) {
      api().login({
        timeout: timeout || DEFAULT_LOGIN_TIMEOUT_MS,
        success: function (res) {
          if (res && res.code) resolve(res.code);
          else reject(new Error('wx.login returned no code' + (res && res.errMsg ? ': ' + res.errMsg : '')));
        },
        fail: function (res) {
          var err = new Error('wx.login failed: ' + ((res && res.errMsg) || 'unknown error'));
          err.errMsg = res && res.errMsg;
          reject(err);
        }
      });
    });
  }

  function doLogin() {
    var gen = generation;
    return wxLogin().then(function (code) {
      var body = { code: code };
      if (appid) body.appid = appid;
      return postJSON(route('login'), body).catch(function (err) {
        err.message = 'login: ' + err.message;
        throw err;
      });
    }).then(function (res) {
      var data = parseData(res.data);
      if (!ok(res.statusCode)) throw httpError(res, 'login');
      if (!data || typeof data.token !== 'string' || !data.token) {
        var err = new Error('login answered without a token');
        err.statusCode = res.statusCode;
        err.data = data;
        throw err;
      }
      var rec = { token: data.token, openid: data.openid };
      if (data.unionid) rec.unionid = data.unionid;
      var ttl = Number(data.expires_in);
      if (data.expires_in !== undefined && data.expires_in !== null && isFinite(ttl)) rec.expiresAt = Date.now() + ttl * 1000;
      if (gen !== generation) {
        // logout() was called meanwhile: the user is logged out, and the
        // server forgets this login's token too.
        var out = new Error('login: logged out while logging in');
        out.code = 'logged_out';
        return postJSON(route('logout'), undefined, data.token).then(noop, noop).then(function () { throw out; });
      }
      store(rec);
      return data;
    });
  }

  // Every caller while a login is under way gets that same login: one
  // wx.login, one POST /login.
  function login() {
    if (!loginInFlight && heldError && Date.now() < heldUntil) return Promise.reject(heldError);
    if (!loginInFlight) {
      var gen = generation;
      var mine = within(doLogin(), timeout || DEFAULT_LOGIN_TIMEOUT_MS, 'login');
      loginInFlight = mine;
      // Only this login's own ending clears it: logout() may have let
      // another one start meanwhile.
      var clear = function () { if (loginInFlight === mine) loginInFlight = null; };
      mine.then(function () {
        heldError = null;
        clear();
      }, function (err) {
        if (err && HELD_STATUSES[err.statusCode] && gen === generation) {
          heldError = err;
          heldUntil = Date.now() + Math.min(typeof err.retryAfter === 'number' ? err.retryAfter * 1000 : LOGIN_HOLD_MS, LOGIN_HOLD_MAX_MS);
        }
        clear();
      });
    }
    return loginInFlight;
  }

  // A token to send: the stored one if usable, else after a (shared) login.
  function ensureToken() {
    if (loginInFlight) return loginInFlight.then(function (d) { return d.token; });
    var t = getToken();
    if (t) return Promise.resolve(t);
    return login().then(function (d) { return d.token; });
  }

  // After `refused` was turned down: if another caller has already logged in
  // since, use its token; otherwise log in (sharing any login under way).
  function freshTokenAfter(refused) {
    if (loginInFlight) return loginInFlight.then(function (d) { return d.token; });
    var t = getToken();
    if (t && t !== refused) return Promise.resolve(t);
    return login().then(function (d) { return d.token; });
  }

  // p, or a rejection once ms have passed without it (no limit when ms is
  // not a positive number).
  function within(p, ms, what) {
    if (!(ms > 0)) return p;
    return new Promise(function (resolve, reject) {
      var timer = setTimeout(function () {
        var err = new Error(what + ' timed out after ' + ms + ' ms');
        err.errMsg = 'request:fail timeout';
        reject(err);
      }, ms);
      p.then(function (v) { clearTimeout(timer); resolve(v); },
        function (e) { clearTimeout(timer); reject(e); });
    });
  }

  function request(opts) {
    opts = opts || {};
    var limit = opts.timeout || timeout;
    var base = {};
    Object.keys(opts).forEach(function (k) {
      if (k !== 'success' && k !== 'fail' && k !== 'complete') base[k] = opts[k];
    });
    base.url = joinURL(baseURL, opts.url || '');

    function attempt(token) {
      var req = Object.assign({}, base);
      req.header = headersWithout(opts.header, 'authorization');
      req.header.Authorization = 'Bearer ' + token;
      if (limit && !req.timeout) req.timeout = limit;
      if (req.data !== undefined && typeof req.data === 'object' && !hasHeader(req.header, 'content-type')) {
        req.header['content-type'] = 'application/json';
      }
      return send(req);
    }

    var gen = generation;
    // The wait for a login counts against the request's timeout too.
    return within(ensureToken(), limit, 'login').then(function (token) {
      return attempt(token).then(function (res) {
        if (!needsLogin(res) || gen !== generation) return res;
        if (token === refusedToken && Date.now() - refusedAt < REFUSED_FRESH_MS) return res;
        // One silent re-login and one retry; a second 401 is returned as is.
        var fresh;
        return within(freshTokenAfter(token), limit, 'login').then(function (t) {
          fresh = t;
          return attempt(t);
        }).then(function (again) {
          if (needsLogin(again)) {
            refusedToken = fresh;
            refusedAt = Date.now();
          }
          return again;
        });
      });
    });
  }

  function postOpenData(name, body) {
    return request({
      url: route(name),
      method: 'POST',
      header: { 'content-type': 'application/json' },
      data: body
    }).then(function (res) {
      if (!ok(res.statusCode)) throw httpError(res, name);
      return parseData(res.data);
    });
  }

  // Accepts either the event (e) or its detail (e.detail).
  function detailOf(x) {
    if (x && x.detail && typeof x.detail === 'object' && !x.encryptedData && !x.code) return x.detail;
    return x || {};
  }

  function noData(d, what) {
    var err = new Error(what + ': the event detail has no data' + (d.errMsg ? ' (' + d.errMsg + ')' : '') +
      '; the user may have declined');
    err.code = 'no_data';
    err.errMsg = d.errMsg;
    return Promise.reject(err);
  }

  function getUserInfo(detail) {
    var d = detailOf(detail);
    if (!d.encryptedData || !d.iv) return noData(d, 'getUserInfo');
    var body = { encryptedData: d.encryptedData, iv: d.iv };
    if (d.rawData !== undefined) body.rawData = d.rawData;
    if (d.signature !== undefined) body.signature = d.signature;
    return postOpenData('userinfo', body);
  }

  function getPhoneNumber(detail) {
    var d = detailOf(detail);
    if (d.code) return postOpenData('phone', { code: d.code });
    if (!d.encryptedData || !d.iv) return noData(d, 'getPhoneNumber');
    return postOpenData('phone', { encryptedData: d.encryptedData, iv: d.iv });
  }

  // Revokes the token on the server and forgets it here, at once: a login
  // asked for after this call stores its own token. A login under way
  // stores none and revokes its own (doLogin), without logout() waiting
  // for it. The local token is forgotten even when the server cannot be
  // reached; never rejects.
  function logout() {
    generation++;
    heldError = null;
    refusedToken = null;
    loginInFlight = null;
    var rec = storedRecord();
    unstored = null;
    try { api().removeStorageSync(storageKey); } catch (e) { /* nothing to forget */ }
    return rec ? postJSON(route('logout'), undefined, rec.token).then(noop, noop) : Promise.resolve();
  }

  // Asks the server for a one-time link (60 s, no token in it) that opens
  // returnTo in a <web-view> already logged in as this user, with a cookie
  // session. Resolves to the link; pass it to <web-view src="{{url}}">.
  function webviewURL(returnTo) {
    return request({
      url: route('web/handoff'),
      method: 'POST',
      header: { 'content-type': 'application/json' },
      data: { return_to: returnTo }
    }).then(function (res) {
      if (!ok(res.statusCode)) throw httpError(res, 'web/handoff');
      var d = parseData(res.data);
      if (!d || typeof d.url !== 'string' || !d.url) {
        var err = new Error('web/handoff answered HTTP ' + res.statusCode + ' without a link: the request ' +
          'reached something other than wechat_auth\'s handoff (is web { … } set in the site\'s wechat_auth, ' +
          'and routePrefix its route_prefix?)');
        err.statusCode = res.statusCode;
        err.data = d;
        throw err;
      }
      return d.url;
    });
  }

  return {
    login: login,
    request: request,
    webviewURL: webviewURL,
    getUserInfo: getUserInfo,
    getPhoneNumber: getPhoneNumber,
    logout: logout,
    getToken: getToken
  };
}

function noop() {}

module.exports = { createAuth: createAuth };
