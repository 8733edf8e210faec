// Integration test: the helper, driven through a fake `wx` that does real
// HTTP, against a real Caddy with wechat_auth in sandbox mode in front of an
// upstream that echoes the headers it receives.
//
// Caddy is $WECHAT_AUTH_CADDY, else <repo>/caddy, else built with
// <repo>/xcaddy.sh build (3-4 minutes cold). WECHAT_AUTH_SKIP_INTEGRATION=1
// skips this file (for quick runs of the unit tests only).
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { createAuth } = require('../wechat-auth.js');
const { createHttpWx } = require('../testlib/fake-wx.js');
const { startCaddy, rawRequest } = require('../testlib/caddy.js');

const skip = process.env.WECHAT_AUTH_SKIP_INTEGRATION === '1'
  ? 'WECHAT_AUTH_SKIP_INTEGRATION=1'
  : false;

let caddy;

before(async () => {
  if (skip) return;
  caddy = await startCaddy();
}, { timeout: 10 * 60 * 1000 });

after(async () => {
  if (caddy) await caddy.stop();
});

// A fresh mini program: its own fake wx (set as global.wx, as in the runtime)
// whose wx.login hands out codes <prefix>1, <prefix>2, …
function miniProgram(codePrefix) {
  const wx = createHttpWx(codePrefix);
  global.wx = wx;
  const auth = createAuth({ baseURL: caddy.baseURL });
  return { wx, auth };
}

// Sandbox: the same code always gives the same openid.
async function openidOf(code) {
  const res = await rawRequest(caddy.baseURL, 'POST', '/wx/login', { body: { code } });
  assert.equal(res.statusCode, 200, JSON.stringify(res.data));
  return res.data.openid;
}

test('five concurrent requests with no token share one wx.login and reach the upstream with X-WX-OPENID', { skip }, async () => {
  const { wx, auth } = miniProgram('five-');
  const results = await Promise.all([1, 2, 3, 4, 5].map((i) => auth.request({ url: '/api/orders?n=' + i })));
  assert.equal(wx.loginCalls, 1);
  const openid = await openidOf('five-1');
  assert.ok(openid);
  for (const res of results) {
    assert.equal(res.statusCode, 200, JSON.stringify(res.data));
    assert.equal(res.data.headers['x-wx-openid'], openid);
  }
  assert.deepEqual(results.map((r) => r.data.url).sort(), [1, 2, 3, 4, 5].map((i) => '/api/orders?n=' + i));
});

test('a stored token the server refuses is recovered with exactly one silent re-login', { skip }, async () => {
  const { wx, auth } = miniProgram('garbage-');
  wx.setStorageSync('wechat_auth_token', { token: 'not.a.token', expiresAt: Date.now() + 3600e3 });
  const res = await auth.request({ url: '/api/me' });
  assert.equal(res.statusCode, 200, JSON.stringify(res.data));
  assert.equal(res.data.headers['x-wx-openid'], await openidOf('garbage-1'));
  assert.equal(wx.loginCalls, 1);
  assert.deepEqual(
    wx.requests.map((r) => [r.path, r.statusCode]),
    [['/api/me', 401], ['/wx/login', 200], ['/api/me', 200]],
  );
});

test('a token revoked elsewhere is recovered with exactly one silent re-login', { skip }, async () => {
  const { wx, auth } = miniProgram('revoked-');
  await auth.login();
  const old = auth.getToken();
  // Logged out from another place: the stored token is now revoked.
  const out = await rawRequest(caddy.baseURL, 'POST', '/wx/logout', { token: old });
  assert.equal(out.statusCode, 204);
  const res = await auth.request({ url: '/api/me' });
  assert.equal(res.statusCode, 200, JSON.stringify(res.data));
  assert.equal(wx.loginCalls, 2);
  assert.notEqual(auth.getToken(), old);
});

test('after logout() the server refuses the old token', { skip }, async () => {
  const { wx, auth } = miniProgram('logout-');
  await auth.login();
  const token = auth.getToken();
  const beforeLogout = await rawRequest(caddy.baseURL, 'GET', '/api/me', { token });
  assert.equal(beforeLogout.statusCode, 200);

  await auth.logout();
  assert.equal(auth.getToken(), null);
  assert.equal(wx.requests.find((r) => r.path === '/wx/logout').statusCode, 204);
  const afterLogout = await rawRequest(caddy.baseURL, 'GET', '/api/me', { token });
  assert.equal(afterLogout.statusCode, 401);
  assert.equal(afterLogout.data.error, 'invalid_token');
});

test('getUserInfo sends what wx.getUserInfo gives and gets the profile back', { skip }, async () => {
  const { auth } = miniProgram('profile-');
  const login = await auth.login();
  const profile = { nickName: 'Test User', gender: 0, language: 'zh_CN', avatarUrl: 'https://example.test/a.png' };
  const enc = await rawRequest(caddy.baseURL, 'POST', '/wx/sandbox/encrypt', { token: auth.getToken(), body: profile });
  assert.equal(enc.statusCode, 200, JSON.stringify(enc.data));
  for (const k of ['encryptedData', 'iv', 'rawData', 'signature']) assert.equal(typeof enc.data[k], 'string', k);

  const info = await auth.getUserInfo(enc.data);
  assert.equal(info.nickName, 'Test User');
  assert.equal(info.avatarUrl, profile.avatarUrl);
  assert.equal(info.openId, login.openid);
});

test('getUserInfo with a tampered signature is refused with signature_mismatch', { skip }, async () => {
  const { auth } = miniProgram('tamper-');
  await auth.login();
  const enc = await rawRequest(caddy.baseURL, 'POST', '/wx/sandbox/encrypt', { token: auth.getToken(), body: { nickName: 'A' } });
  assert.equal(enc.statusCode, 200, JSON.stringify(enc.data));
  const detail = Object.assign({}, enc.data, { rawData: '{"nickName":"B"}' });
  await assert.rejects(auth.getUserInfo(detail), (err) => {
    assert.equal(err.statusCode, 400);
    assert.equal(err.code, 'signature_mismatch');
    return true;
  });
});

test('getPhoneNumber with a sandbox phone code returns the number', { skip }, async () => {
  const { auth } = miniProgram('phone-user-');
  const phone = await auth.getPhoneNumber({ code: 'phone-13800138000', errMsg: 'getPhoneNumber:ok' });
  assert.equal(phone.purePhoneNumber, '13800138000');
  assert.match(String(phone.phoneNumber), /13800138000$/);
});
