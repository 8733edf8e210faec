// The example mini program: its copy of the helper is current, its pages are
// complete, and its page logic works when run with App/Page/getApp stand-ins.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { createStubWx } = require('../testlib/fake-wx.js');
const { createStubServer } = require('../testlib/stub-server.js');
const { loadExamplePage, EXAMPLE } = require('../testlib/example-page.js');

const ROOT = path.join(__dirname, '..');

test('the example and the npm package carry the current helper and LICENSE (run `npm run sync-example` after editing wechat-auth.js)', () => {
  const same = (copy, original) => {
    const a = fs.readFileSync(path.join(ROOT, copy), 'utf8');
    const b = fs.readFileSync(path.join(ROOT, original), 'utf8');
    assert.ok(a === b, copy + ' differs from ' + original);
  };
  same('example/utils/wechat-auth.js', 'wechat-auth.js');
  same('miniprogram_dist/index.js', 'wechat-auth.js');
  same('LICENSE', '../LICENSE');
});

test('every page listed in app.json has its four files', () => {
  const app = JSON.parse(fs.readFileSync(path.join(EXAMPLE, 'app.json'), 'utf8'));
  assert.ok(app.pages.length > 0);
  for (const page of app.pages) {
    for (const ext of ['js', 'json', 'wxml', 'wxss']) {
      assert.ok(fs.existsSync(path.join(EXAMPLE, page + '.' + ext)), page + '.' + ext);
    }
  }
  JSON.parse(fs.readFileSync(path.join(EXAMPLE, 'project.config.json'), 'utf8'));
});

test('the example page calls /api/me once logged in and shows phone number results', async () => {
  const server = createStubServer();
  server.routes['/api/me'] = (req, openid) => ({ statusCode: 200, data: { openid } });
  server.routes['/wx/phone'] = () => ({ statusCode: 200, data: { phoneNumber: '13800138000' } });
  const wx = createStubWx(server.handle);
  const { page, shown } = loadExamplePage(wx);

  page.onLoad();
  await shown();
  assert.equal(wx.loginCalls, 1); // onLaunch's login and the page's request shared it
  assert.equal(page.data.title, 'GET /api/me → 200');
  assert.match(page.data.result, /o-code-1/);
  assert.equal(page.data.signedIn, true);

  page.onGetPhoneNumber({ detail: { code: 'abc', errMsg: 'getPhoneNumber:ok' } });
  await shown();
  assert.match(page.data.result, /13800138000/);

  page.onGetPhoneNumber({ detail: { errMsg: 'getPhoneNumber:fail user deny' } });
  await shown();
  assert.equal(page.data.title, 'Phone number not shared');

  page.logout();
  await shown();
  assert.equal(page.data.signedIn, false);
  assert.ok(wx.requests.some((r) => r.path === '/wx/logout'));
});
