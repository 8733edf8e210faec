// Unit tests: the helper against a stubbed server (a fake `wx` whose
// wx.request is answered by JS functions). Fast; no network.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { createAuth } = require('../wechat-auth.js');
const { createStubWx } = require('../testlib/fake-wx.js');
const { createStubServer } = require('../testlib/stub-server.js');

const BASE = 'https://api.example.test';
const KEY = 'wechat_auth_token';

// A fresh server, fake wx (as global.wx, like the mini program runtime) and
// helper for each test.
function setup(options) {
  const server = createStubServer();
  const wx = createStubWx(server.handle);
  global.wx = wx;
  const auth = createAuth(Object.assign({ baseURL: BASE }, options));
  return { server, wx, auth };
}

const paths = (wx) => wx.requests.map((r) => r.path);
const future = () => Date.now() + 3600 * 1000;

test('five concurrent requests while logged out share one wx.login', async () => {
  const { wx, auth } = setup();
  const results = await Promise.all(
    [1, 2, 3, 4, 5].map((i) => auth.request({ url: '/api/orders/' + i })),
  );
  assert.equal(wx.loginCalls, 1);
  assert.equal(paths(wx).filter((p) => p === '/wx/login').length, 1);
  for (const res of results) {
    assert.equal(res.statusCode, 200);
    assert.equal(res.data.openid, 'o-code-1');
  }
  const apiCalls = wx.requests.filter((r) => r.path.startsWith('/api/'));
  assert.equal(apiCalls.length, 5);
  for (const r of apiCalls) assert.equal(r.authorization, 'Bearer tok-1');
  assert.equal(auth.getToken(), 'tok-1');
});

test('concurrent login() calls share one wx.login and one POST /login', async () => {
  const { wx, auth } = setup();
  const results = await Promise.all([auth.login(), auth.login(), auth.login()]);
  assert.equal(wx.loginCalls, 1);
  assert.equal(wx.requests.length, 1);
  assert.deepEqual(results.map((r) => r.token), ['tok-1', 'tok-1', 'tok-1']);
  await auth.login(); // a later call is a new login
  assert.equal(wx.loginCalls, 2);
});

test('login posts the code as JSON, stores the token with an absolute expiry, and returns the response', async () => {
  const { wx, auth } = setup();
  const before = Date.now();
  const res = await auth.login();
  assert.deepEqual(res, { token: 'tok-1', token_type: 'Bearer', expires_in: 7200, openid: 'o-code-1' });

  const [req] = wx.requests;
  assert.equal(req.method, 'POST');
  assert.equal(req.url, BASE + '/wx/login');
  assert.equal(req.header['content-type'], 'application/json');
  assert.deepEqual(req.body, { code: 'code-1' }); // no appid when none is configured
  assert.equal(req.authorization, undefined);

  const stored = wx.getStorageSync(KEY);
  assert.equal(stored.token, 'tok-1');
  assert.equal(stored.openid, 'o-code-1');
  assert.ok(stored.expiresAt >= before + 7200 * 1000 && stored.expiresAt <= Date.now() + 7200 * 1000);
});

test('login sends the appid when configured, to the configured route prefix and storage key', async () => {
  const { server, wx, auth } = setup({ appid: 'wx1234', routePrefix: '/auth/', storageKey: 'my_token' });
  server.prefix = '/auth';
  await auth.login();
  assert.equal(wx.requests[0].url, BASE + '/auth/login');
  assert.deepEqual(wx.requests[0].body, { code: 'code-1', appid: 'wx1234' });
  assert.equal(wx.getStorageSync('my_token').token, 'tok-1');
  assert.equal(wx.getStorageSync(KEY), '');
});

test('a refused stored token is replaced by one silent re-login and the request retried', async () => {
  const { wx, auth } = setup();
  wx.setStorageSync(KEY, { token: 'garbage', expiresAt: future() });
  const res = await auth.request({ url: '/api/me' });
  assert.equal(res.statusCode, 200);
  assert.equal(res.data.openid, 'o-code-1');
  assert.equal(wx.loginCalls, 1);
  assert.deepEqual(paths(wx), ['/api/me', '/wx/login', '/api/me']);
  assert.equal(wx.requests[0].authorization, 'Bearer garbage');
  assert.equal(wx.requests[2].authorization, 'Bearer tok-1');
  assert.equal(auth.getToken(), 'tok-1');
});

test('when the re-login token is refused too, the 401 comes back without another login', async () => {
  const { server, wx, auth } = setup();
  server.refuseAll = true;
  wx.setStorageSync(KEY, { token: 'garbage', expiresAt: future() });
  const res = await auth.request({ url: '/api/me' });
  assert.equal(res.statusCode, 401);
  assert.equal(res.data.error, 'invalid_token');
  assert.equal(wx.loginCalls, 1);
  assert.deepEqual(paths(wx), ['/api/me', '/wx/login', '/api/me']);
});

test('with no token and a server refusing every token, a request stops after two logins', async () => {
  const { server, wx, auth } = setup();
  server.refuseAll = true;
  const res = await auth.request({ url: '/api/me' });
  assert.equal(res.statusCode, 401);
  assert.equal(wx.loginCalls, 2);
  assert.deepEqual(paths(wx), ['/wx/login', '/api/me', '/wx/login', '/api/me']);
});

test('five concurrent requests with a refused stored token share one re-login', async () => {
  const { wx, auth } = setup();
  wx.setStorageSync(KEY, { token: 'garbage', expiresAt: future() });
  const results = await Promise.all([1, 2, 3, 4, 5].map(() => auth.request({ url: '/api/me' })));
  assert.deepEqual(results.map((r) => r.statusCode), [200, 200, 200, 200, 200]);
  assert.equal(wx.loginCalls, 1);
});

test('a 401 that arrives after the re-login finished retries with the new token, without another login', async () => {
  const server = createStubServer();
  let refusals = 0;
  const wx = createStubWx(async (req) => {
    if (req.authorization === 'Bearer garbage') {
      // The second refusal comes back well after the first one's re-login.
      if (refusals++ === 1) await new Promise((r) => setTimeout(r, 50));
    }
    return server.handle(req);
  });
  global.wx = wx;
  wx.setStorageSync(KEY, { token: 'garbage', expiresAt: future() });
  const auth = createAuth({ baseURL: BASE });
  const [a, b] = await Promise.all([auth.request({ url: '/api/a' }), auth.request({ url: '/api/b' })]);
  assert.equal(a.statusCode, 200);
  assert.equal(b.statusCode, 200);
  assert.equal(wx.loginCalls, 1);
});

// nginx's auth_request answers a refused token with its own HTML page and
// passes only wechat_auth's challenge on (docs/forward-auth.md's older
// config, ingress-nginx). The header names arrive in any case.
const NGINX_401 = '<html>\r\n<head><title>401 Authorization Required</title></head>\r\n' +
  '<body>\r\n<center><h1>401 Authorization Required</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n';

test('a 401 with nginx\'s HTML page and wechat_auth\'s challenge logs in again', async () => {
  for (const [name, challenge] of [
    ['WWW-Authenticate', 'Bearer realm="wechat_auth", error="invalid_token"'],
    ['www-authenticate', 'Bearer realm="wechat_auth"'],
    ['Www-Authenticate', ['Basic realm="other"', 'Bearer error="invalid_token", realm="wechat_auth"']],
  ]) {
    const { server, wx, auth } = setup();
    server.routes['/api/me'] = (req, openid) => (req.authorization === 'Bearer tok-1'
      ? { statusCode: 401, header: { [name]: challenge, 'Content-Type': 'text/html' }, data: NGINX_401 }
      : { statusCode: 200, data: { openid } });
    await auth.login(); // tok-1, revoked on the server
    const res = await auth.request({ url: '/api/me' });
    assert.equal(res.statusCode, 200, name);
    assert.equal(wx.loginCalls, 2);
    assert.deepEqual(paths(wx), ['/wx/login', '/api/me', '/wx/login', '/api/me']);
    assert.equal(auth.getToken(), 'tok-2');
  }
});

test('a 401 whose challenge is not wechat_auth\'s, or whose JSON names another error, is returned as it is', async () => {
  const { server, wx, auth } = setup();
  server.routes['/api/other-realm'] = () => ({ statusCode: 401, header: { 'WWW-Authenticate': 'Bearer realm="my_app"' }, data: NGINX_401 });
  server.routes['/api/realm-in-param'] = () => ({ statusCode: 401, header: { 'WWW-Authenticate': 'Basic realm="my_app", charset="wechat_auth"' }, data: NGINX_401 });
  server.routes['/api/phone-code'] = () => ({ statusCode: 401, header: { 'WWW-Authenticate': 'Bearer realm="wechat_auth", error="invalid_token"' }, data: { error: 'invalid_code', message: 'x' } });
  server.routes['/api/proto'] = () => ({ statusCode: 401, data: { error: 'constructor' } });
  await auth.login();
  for (const url of ['/api/other-realm', '/api/realm-in-param', '/api/phone-code', '/api/proto']) {
    const res = await auth.request({ url });
    assert.equal(res.statusCode, 401, url);
  }
  assert.equal(wx.loginCalls, 1);
  assert.equal(auth.getToken(), 'tok-1');
});

test('401s that are not about the token, and other statuses, are returned as they are', async () => {
  const { server, wx, auth } = setup();
  server.routes['/api/owner-only'] = () => ({ statusCode: 401, data: { error: 'not_owner' } });
  server.routes['/api/plain-401'] = () => ({ statusCode: 401, data: 'Unauthorized' });
  server.routes['/api/broken'] = () => ({ statusCode: 500, data: { error: 'boom' } });
  await auth.login();

  const a = await auth.request({ url: '/api/owner-only' });
  const b = await auth.request({ url: '/api/plain-401' });
  const c = await auth.request({ url: '/api/broken' });
  assert.equal(a.statusCode, 401);
  assert.deepEqual(a.data, { error: 'not_owner' });
  assert.equal(b.statusCode, 401);
  assert.equal(c.statusCode, 500);
  assert.equal(wx.loginCalls, 1);
  assert.equal(auth.getToken(), 'tok-1');
});

test('an expired stored token is never sent; the helper logs in first', async () => {
  const { wx, auth } = setup();
  wx.setStorageSync(KEY, { token: 'tok-old', expiresAt: Date.now() - 1000 });
  assert.equal(auth.getToken(), null);
  const res = await auth.request({ url: '/api/me' });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(paths(wx), ['/wx/login', '/api/me']);
  assert.ok(wx.requests.every((r) => r.authorization !== 'Bearer tok-old'));
});

test('a token stored as a bare string is used without logging in', async () => {
  const { server, wx, auth } = setup();
  server.tokens.set('tok-elsewhere', 'o-other');
  wx.setStorageSync(KEY, 'tok-elsewhere');
  const res = await auth.request({ url: '/api/me' });
  assert.equal(res.data.openid, 'o-other');
  assert.equal(wx.loginCalls, 0);
});

test('a network failure rejects with an Error', async () => {
  const server = createStubServer();
  const wx = createStubWx((req) => (req.path === '/api/me' ? { fail: 'timeout' } : server.handle(req)));
  global.wx = wx;
  const auth = createAuth({ baseURL: BASE });
  await assert.rejects(auth.request({ url: '/api/me' }), (err) => {
    assert.ok(err instanceof Error);
    assert.match(err.message, /request:fail timeout/);
    return true;
  });
});

test('relative URLs get the baseURL, absolute ones are kept, and caller headers pass through', async () => {
  const { wx, auth } = setup({ baseURL: BASE + '/' });
  await auth.request({ url: 'api/a' });
  await auth.request({
    url: 'https://other.example.test/b',
    method: 'POST',
    data: { n: 1 },
    header: { 'X-Trace': 'abc', authorization: 'Bearer spoofed' },
  });
  const a = wx.requests.find((r) => r.path === '/api/a');
  const b = wx.requests.find((r) => r.path === '/b');
  assert.equal(a.url, BASE + '/api/a');
  assert.equal(b.url, 'https://other.example.test/b');
  assert.equal(b.method, 'POST');
  assert.deepEqual(b.body, { n: 1 });
  assert.equal(b.header['X-Trace'], 'abc');
  const authHeaders = Object.keys(b.header).filter((k) => k.toLowerCase() === 'authorization');
  assert.deepEqual(authHeaders, ['Authorization']);
  assert.equal(b.authorization, 'Bearer tok-1');
});

test('logout revokes the token on the server and forgets it', async () => {
  const { server, wx, auth } = setup();
  await auth.login();
  await auth.logout();
  const req = wx.requests.find((r) => r.path === '/wx/logout');
  assert.equal(req.method, 'POST');
  assert.equal(req.authorization, 'Bearer tok-1');
  assert.equal(server.tokens.has('tok-1'), false);
  assert.equal(auth.getToken(), null);
  assert.equal(wx.storage.has(KEY), false);

  const res = await auth.request({ url: '/api/me' });
  assert.equal(res.statusCode, 200);
  assert.equal(wx.loginCalls, 2);
});

test('logout forgets the token even when the server cannot be reached', async () => {
  const server = createStubServer();
  const wx = createStubWx((req) => (req.path === '/wx/logout' ? { fail: 'no network' } : server.handle(req)));
  global.wx = wx;
  const auth = createAuth({ baseURL: BASE });
  await auth.login();
  await auth.logout(); // resolves
  assert.equal(auth.getToken(), null);
  assert.equal(wx.storage.has(KEY), false);
});

test('getUserInfo posts exactly encryptedData, iv, rawData and signature and resolves the decrypted object', async () => {
  const { server, wx, auth } = setup();
  server.routes['/wx/userinfo'] = (req, openid) => ({ statusCode: 200, data: { nickName: 'Mia', openId: openid } });
  const detail = {
    errMsg: 'getUserInfo:ok',
    userInfo: { nickName: 'Mia' },
    rawData: '{"nickName":"Mia"}',
    signature: 'abc123',
    encryptedData: 'ZW5j+/==',
    iv: 'aXY=',
    cloudID: 'cloud',
  };
  // The whole button event works as well as its detail.
  const info = await auth.getUserInfo({ type: 'getuserinfo', detail });
  assert.deepEqual(info, { nickName: 'Mia', openId: 'o-code-1' });
  const req = wx.requests.find((r) => r.path === '/wx/userinfo');
  assert.equal(req.method, 'POST');
  assert.equal(req.header['content-type'], 'application/json');
  assert.equal(req.authorization, 'Bearer tok-1');
  assert.deepEqual(req.body, {
    encryptedData: 'ZW5j+/==',
    iv: 'aXY=',
    rawData: '{"nickName":"Mia"}',
    signature: 'abc123',
  });
});

test('getPhoneNumber posts only the code when there is one, else encryptedData and iv', async () => {
  const { server, wx, auth } = setup();
  server.routes['/wx/phone'] = () => ({
    statusCode: 200,
    data: { phoneNumber: '+86 13800138000', purePhoneNumber: '13800138000', countryCode: '86' },
  });
  const p1 = await auth.getPhoneNumber({ code: 'phone-code', encryptedData: 'e', iv: 'i', errMsg: 'getPhoneNumber:ok' });
  await auth.getPhoneNumber({ encryptedData: 'ZW5j', iv: 'aXY=', errMsg: 'getPhoneNumber:ok' });
  assert.equal(p1.purePhoneNumber, '13800138000');
  const bodies = wx.requests.filter((r) => r.path === '/wx/phone').map((r) => r.body);
  assert.deepEqual(bodies, [{ code: 'phone-code' }, { encryptedData: 'ZW5j', iv: 'aXY=' }]);
});

test('a server error from /wx/phone rejects with statusCode, code and data', async () => {
  const { server, auth } = setup();
  const answer = { error: 'decrypt_failed', message: 'the data could not be decrypted' };
  server.routes['/wx/phone'] = () => ({ statusCode: 400, data: answer });
  await assert.rejects(auth.getPhoneNumber({ encryptedData: 'ZW5j', iv: 'aXY=' }), (err) => {
    assert.ok(err instanceof Error);
    assert.equal(err.statusCode, 400);
    assert.equal(err.code, 'decrypt_failed');
    assert.deepEqual(err.data, answer);
    assert.equal(err.message, answer.message);
    return true;
  });
});

test('a declined phone button rejects with no_data and sends nothing', async () => {
  const { wx, auth } = setup();
  await assert.rejects(auth.getPhoneNumber({ errMsg: 'getPhoneNumber:fail user deny' }), (err) => {
    assert.equal(err.code, 'no_data');
    assert.match(err.message, /user deny/);
    return true;
  });
  assert.equal(wx.requests.length, 0);
  assert.equal(wx.loginCalls, 0);
});

test('getUserInfo recovers from session_expired with one silent re-login', async () => {
  const { server, wx, auth } = setup();
  let calls = 0;
  server.routes['/wx/userinfo'] = () => {
    calls++;
    return calls === 1
      ? {
        statusCode: 401,
        header: { 'WWW-Authenticate': 'Bearer realm="wechat_auth", error="invalid_token"' },
        data: { error: 'session_expired', message: 'log in again' },
      }
      : { statusCode: 200, data: { nickName: 'Mia' } };
  };
  await auth.login();
  const info = await auth.getUserInfo({ encryptedData: 'ZW5j', iv: 'aXY=' });
  assert.deepEqual(info, { nickName: 'Mia' });
  assert.equal(wx.loginCalls, 2);
  assert.equal(calls, 2);
});

test('a refused login rejects with the server error and the next login tries again', async () => {
  const server = createStubServer();
  let refused = false;
  const wx = createStubWx((req) => {
    if (req.path === '/wx/login' && !refused) {
      refused = true;
      return { statusCode: 401, data: { error: 'invalid_code', message: 'call wx.login again' } };
    }
    return server.handle(req);
  });
  global.wx = wx;
  const auth = createAuth({ baseURL: BASE });
  await assert.rejects(auth.login(), (err) => {
    assert.equal(err.statusCode, 401);
    assert.equal(err.code, 'invalid_code');
    return true;
  });
  assert.equal(auth.getToken(), null);
  const res = await auth.login();
  assert.equal(res.token, 'tok-1');
  assert.equal(wx.loginCalls, 2);
});

test('an upstream\'s own 401 is returned as it is, whatever its error code, and the request is sent once', async () => {
  const { server, wx, auth } = setup();
  server.routes['/api/orders'] = () => ({ statusCode: 401, data: { error: 'unauthorized', message: 'not a member' } });
  server.routes['/api/shop'] = () => ({
    statusCode: 401,
    header: { 'WWW-Authenticate': 'Bearer realm="shop", error="invalid_token"' },
    data: { error: 'invalid_token' },
  });
  await auth.login();
  for (const url of ['/api/orders', '/api/shop']) {
    const res = await auth.request({ url, method: 'POST', data: { order: 1 } });
    assert.equal(res.statusCode, 401, url);
  }
  assert.equal(wx.loginCalls, 1);
  assert.deepEqual(paths(wx), ['/wx/login', '/api/orders', '/api/shop']);
  assert.equal(auth.getToken(), 'tok-1');
});

test('a login a request needs that is refused rejects the request, with Retry-After when the server gave one', async () => {
  const server = createStubServer();
  const wx = createStubWx((req) => (req.path === '/wx/login'
    ? { statusCode: 503, header: { 'Retry-After': '7' }, data: { error: 'wechat_unavailable', message: 'try later' } }
    : server.handle(req)));
  global.wx = wx;
  const auth = createAuth({ baseURL: BASE });
  await assert.rejects(auth.request({ url: '/api/me' }), (err) => {
    assert.equal(err.statusCode, 503);
    assert.equal(err.code, 'wechat_unavailable');
    assert.equal(err.retryAfter, 7);
    return true;
  });
  assert.deepEqual(paths(wx), ['/wx/login']);
});

test('a request\'s timeout bounds its wait for the login, and the helper\'s timeout goes to the login', async () => {
  const server = createStubServer();
  const wx = createStubWx((req) => (req.path === '/wx/login' ? new Promise(() => {}) : server.handle(req)));
  global.wx = wx;
  const auth = createAuth({ baseURL: BASE, timeout: 5000 });
  const started = Date.now();
  await assert.rejects(auth.request({ url: '/api/me', timeout: 100 }), (err) => {
    assert.match(err.message, /^login timed out after 100 ms/);
    return true;
  });
  assert.ok(Date.now() - started < 3000, 'rejected after the request\'s timeout, not the login\'s');
  assert.equal(wx.requests[0].timeout, 5000);
});

test('a login that cannot reach the server says it was the login', async () => {
  const wx = createStubWx(() => ({ fail: 'ECONNRESET' }));
  global.wx = wx;
  const auth = createAuth({ baseURL: BASE });
  await assert.rejects(auth.request({ url: '/api/me' }), (err) => {
    assert.match(err.message, /^login: wx\.request failed: request:fail ECONNRESET/);
    return true;
  });
});

test('when storage refuses the token, it is kept for this run and the next request does not log in again', async () => {
  const { wx, auth } = setup();
  wx.setStorageSync = () => { throw new Error('setStorageSync:fail exceed storage max size 10Mb'); };
  const a = await auth.request({ url: '/api/a' });
  const b = await auth.request({ url: '/api/b' });
  assert.equal(a.statusCode, 200);
  assert.equal(b.statusCode, 200);
  assert.equal(wx.loginCalls, 1);
  assert.equal(auth.getToken(), 'tok-1');
  await auth.logout();
  assert.equal(auth.getToken(), null);
});

test('a handoff answered by something other than wechat_auth says what to check', async () => {
  const { wx, auth } = setup();
  await assert.rejects(auth.webviewURL('/shop/'), (err) => {
    assert.match(err.message, /without a link.*web \{ … \}/);
    assert.equal(err.statusCode, 200);
    return true;
  });
  assert.deepEqual(paths(wx), ['/wx/login', '/wx/web/handoff']);
});

test('when even a fresh token is refused, later requests do not log in again for a while', async () => {
  const { server, wx, auth } = setup();
  server.refuseAll = true; // as behind a proxy that drops Authorization
  for (let i = 0; i < 10; i++) {
    const res = await auth.request({ url: '/api/me' });
    assert.equal(res.statusCode, 401);
  }
  assert.equal(wx.loginCalls, 2, 'the first request\'s login and re-login only');
  server.refuseAll = false;
  const res = await auth.request({ url: '/api/me' });
  assert.equal(res.statusCode, 200, 'a token the server takes again works at once');
  assert.equal(wx.loginCalls, 2);
});

// Runs f with Date.now ms ahead.
async function later(ms, f) {
  const realNow = Date.now;
  Date.now = () => realNow() + ms;
  try {
    return await f();
  } finally {
    Date.now = realNow;
  }
}

test('the 30 s without a new login ends: then a refused token gets one re-login again', async () => {
  const { server, wx, auth } = setup();
  server.refuseAll = true;
  await auth.request({ url: '/api/me' });
  await auth.request({ url: '/api/me' });
  assert.equal(wx.loginCalls, 2);
  server.refuseAll = false;
  server.tokens.clear(); // every token revoked, say by a restart without Redis
  const res = await later(31 * 1000, () => auth.request({ url: '/api/me' }));
  assert.equal(res.statusCode, 200);
  assert.equal(wx.loginCalls, 3);
});

test('when storage is full and holds an older token, the new one is used and logged out', async () => {
  const { server, wx, auth } = setup();
  wx.setStorageSync(KEY, { token: 'tok-revoked', expiresAt: future() });
  wx.setStorageSync = () => { throw new Error('setStorageSync:fail exceed storage max size 10Mb'); };
  for (const url of ['/api/a', '/api/b', '/api/c']) {
    const res = await auth.request({ url });
    assert.equal(res.statusCode, 200, url);
  }
  assert.equal(wx.loginCalls, 1);
  assert.equal(auth.getToken(), 'tok-1');
  assert.equal(wx.getStorageSync(KEY), '', 'the older token is no longer in storage');
  await auth.logout();
  assert.equal(server.tokens.has('tok-1'), false, 'logout revoked the live token');
});

test('a login refused for a ban is not tried again for 30 s; one refused with Retry-After waits that long', async () => {
  const server = createStubServer();
  let answer = { statusCode: 403, data: { error: 'user_blocked', message: 'banned' } };
  const wx = createStubWx((req) => (req.path === '/wx/login' && answer ? answer : server.handle(req)));
  global.wx = wx;
  const auth = createAuth({ baseURL: BASE });
  for (let i = 0; i < 3; i++) {
    await assert.rejects(auth.request({ url: '/api/me' }), (err) => err.code === 'user_blocked');
  }
  assert.equal(wx.loginCalls, 1, 'one wx.login for three requests');
  answer = { statusCode: 429, header: { 'Retry-After': '60' }, data: { error: 'rate_limited', message: 'slow down' } };
  await later(31 * 1000, async () => {
    await assert.rejects(auth.request({ url: '/api/me' }), (err) => err.code === 'rate_limited' && err.retryAfter === 60);
    await assert.rejects(auth.request({ url: '/api/me' }), (err) => err.code === 'rate_limited');
  });
  await later(70 * 1000, () => assert.rejects(auth.request({ url: '/api/me' }), (err) => err.code === 'rate_limited'));
  assert.equal(wx.loginCalls, 2, 'still held 39 s into a Retry-After of 60 s');
  answer = null;
  const res = await later((31 + 61) * 1000, () => auth.request({ url: '/api/me' }));
  assert.equal(res.statusCode, 200);
  assert.equal(wx.loginCalls, 3);
});

test('a request sent before logout() does not log in again when its token is refused after', async () => {
  const server = createStubServer();
  let release;
  const gate = new Promise((r) => { release = r; });
  const wx = createStubWx(async (req) => {
    if (req.path === '/api/slow') await gate; // answered after the logout
    return server.handle(req);
  });
  global.wx = wx;
  const auth = createAuth({ baseURL: BASE });
  await auth.login();
  const pending = auth.request({ url: '/api/slow' });
  await new Promise((r) => setImmediate(r));
  await auth.logout();
  release();
  const res = await pending;
  assert.equal(res.statusCode, 401);
  assert.equal(wx.loginCalls, 1, 'no login after the logout');
  assert.equal(auth.getToken(), null);
});

test('a login that ends after logout() stores no token', async () => {
  const server = createStubServer();
  let release;
  const gate = new Promise((r) => { release = r; });
  const wx = createStubWx(async (req) => {
    if (req.path === '/wx/login') await gate;
    return server.handle(req);
  });
  global.wx = wx;
  const auth = createAuth({ baseURL: BASE });
  const pending = auth.login();
  await new Promise((r) => setImmediate(r));
  const out = auth.logout();
  release();
  await assert.rejects(pending, (err) => err.code === 'logged_out');
  await out;
  assert.equal(auth.getToken(), null);
  assert.equal(server.tokens.has('tok-1'), false, 'the overtaken login\'s token is revoked on the server');
});

// withRefusedLogin sets up a helper whose first login waits for release()
// and is then refused with a 503 and Retry-After: 60; before is that login.
function withRefusedLogin() {
  const server = createStubServer();
  let release;
  const gate = new Promise((r) => { release = r; });
  let refuseNext = true;
  const wx = createStubWx(async (req) => {
    if (req.path === '/wx/login' && refuseNext) {
      refuseNext = false;
      await gate;
      return { statusCode: 503, header: { 'Retry-After': '60' }, data: { error: 'wechat_unavailable', message: 'down' } };
    }
    return server.handle(req);
  });
  global.wx = wx;
  const auth = createAuth({ baseURL: BASE });
  return { server, auth, release, before: auth.login() };
}

test('login() right after logout() is a new login, whose token logout() leaves alone', async () => {
  const { server, auth, release, before } = withRefusedLogin();
  await new Promise((r) => setImmediate(r));
  const out = auth.logout();
  const after = auth.login(); // "switch account", not awaiting logout()
  release();
  await assert.rejects(before, (err) => err.code === 'wechat_unavailable');
  const res = await after;
  assert.equal(typeof res.token, 'string');
  await out;
  assert.equal(auth.getToken(), res.token, 'logout() did not take the new login\'s token');
  assert.equal(server.tokens.has(res.token), true, 'nor revoke it');
});

test('a login refused after logout() overtook it holds no later login', async () => {
  const { server, auth, release, before } = withRefusedLogin();
  await new Promise((r) => setImmediate(r));
  const out = auth.logout();
  release();
  await assert.rejects(before, (err) => err.code === 'wechat_unavailable');
  await out;
  const again = await auth.request({ url: '/api/me' });
  assert.equal(again.statusCode, 200, 'the refusal of the login before logout() holds no later login');
});

test('the 30 s without a re-login holds while other paths answer', async () => {
  const server = createStubServer();
  server.routes['/public'] = () => ({ statusCode: 200, data: {} });
  // A proxy drops Authorization on /api only: every token is refused there.
  const wx = createStubWx((req) => server.handle(req.path.startsWith('/api/') ? Object.assign({}, req, { authorization: undefined }) : req));
  global.wx = wx;
  const auth = createAuth({ baseURL: BASE });
  for (let i = 0; i < 5; i++) {
    await auth.request({ url: '/api/me' });
    await auth.request({ url: '/public' });
  }
  assert.equal(wx.loginCalls, 2, 'the first request\'s login and re-login only');
});

// withHangingLogin sets up a helper with the given timeout whose
// wx.login never calls back until answer() is called.
function withHangingLogin(timeout) {
  const server = createStubServer();
  const wx = createStubWx(server.handle);
  const login = wx.login;
  let hang = true;
  wx.login = (opts) => (hang ? undefined : login(opts));
  global.wx = wx;
  return { auth: createAuth({ baseURL: BASE, timeout }), answer: () => { hang = false; } };
}

test('a wx.login that never answers does not hold later logins', async () => {
  const { auth, answer } = withHangingLogin(100);
  await assert.rejects(auth.request({ url: '/api/me' }), (err) => /timed out/.test(err.message));
  answer();
  const res = await auth.request({ url: '/api/me' });
  assert.equal(res.statusCode, 200);
});

test('a Retry-After of a day holds logins 5 minutes at most, and logout() ends the hold', async () => {
  const server = createStubServer();
  let answer = { statusCode: 503, header: { 'Retry-After': '86400' }, data: { error: 'wechat_unavailable', message: 'down' } };
  const wx = createStubWx((req) => (req.path === '/wx/login' && answer ? answer : server.handle(req)));
  global.wx = wx;
  const auth = createAuth({ baseURL: BASE });
  await assert.rejects(auth.request({ url: '/api/me' }), (err) => err.code === 'wechat_unavailable');
  answer = null;
  const res = await later(5 * 60 * 1000 + 1000, () => auth.request({ url: '/api/me' }));
  assert.equal(res.statusCode, 200);
  answer = { statusCode: 503, header: { 'Retry-After': '60' }, data: { error: 'wechat_unavailable', message: 'down' } };
  server.tokens.clear();
  await assert.rejects(auth.request({ url: '/api/me' }), (err) => err.code === 'wechat_unavailable');
  await auth.logout();
  answer = null;
  const again = await auth.request({ url: '/api/me' });
  assert.equal(again.statusCode, 200, 'a login right after logout() is not held');
});

test('logout() does not wait for a login it overtook that never ends', async () => {
  const { auth, answer } = withHangingLogin(3000);
  auth.login().catch(() => {}); // hangs until its 3 s bound
  await new Promise((r) => setImmediate(r));
  const started = Date.now();
  await auth.logout();
  answer();
  const res = await auth.login();
  assert.equal(typeof res.token, 'string');
  assert.ok(Date.now() - started < 1500, 'logout() then login() did not wait for the hung login');
});
