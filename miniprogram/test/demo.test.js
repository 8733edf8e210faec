// The README's demo and the example mini program fit together: Caddy runs
// the repository's Caddyfile.example unchanged, and the example app, with its
// config.js unchanged (http://127.0.0.1:8080), logs in through a fake `wx`
// doing real HTTP and reaches the demo upstream with its openid.
//
// The demo's ports are fixed (8080, 8081, admin 2019). When one is taken —
// the demo already running, say — the test skips, saying so; under CI=true
// that is a failure instead.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { createHttpWx } = require('../testlib/fake-wx.js');
const { loadExamplePage, EXAMPLE } = require('../testlib/example-page.js');
const { startDemo, busyPort } = require('../testlib/caddy.js');

const skipIntegration = process.env.WECHAT_AUTH_SKIP_INTEGRATION === '1';

test('the example mini program, config.js unchanged, logs in against Caddyfile.example', { skip: skipIntegration && 'WECHAT_AUTH_SKIP_INTEGRATION=1', timeout: 10 * 60 * 1000 }, async (t) => {
  assert.equal(require(path.join(EXAMPLE, 'config.js')).baseURL, 'http://127.0.0.1:8080');
  const busy = await busyPort([8080, 8081, 2019]);
  if (busy !== null) {
    const why = `127.0.0.1:${busy} is taken (is the demo running?)`;
    if (process.env.CI === 'true') assert.fail(why);
    t.skip(why);
    return;
  }
  const demo = await startDemo();
  try {
    const wx = createHttpWx('demo-');
    const { page, shown } = loadExamplePage(wx);
    page.onLoad();
    await shown();
    assert.equal(page.data.title, 'GET /api/me → 200', page.data.result);
    assert.equal(wx.loginCalls, 1);
    assert.equal(page.data.signedIn, true);
    const saw = JSON.parse(page.data.result).upstream_saw;
    assert.match(saw['X-WX-OPENID'], /^o/);
    assert.equal(saw['X-WX-APPID'], 'wxsandbox0000000');
    assert.equal(saw.Authorization, '', 'the token reached the upstream');
    assert.deepEqual(wx.requests.map((r) => r.url), ['http://127.0.0.1:8080/wx/login', 'http://127.0.0.1:8080/api/me']);
  } finally {
    await demo.stop();
  }
});
