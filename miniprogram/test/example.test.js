// The example mini program: its copy of the helper is current, its pages are
// complete, and its page logic works when run with App/Page/getApp stand-ins.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { createStubWx } = require('../testlib/fake-wx.js');
const { createStubServer } = require('../testlib/stub-server.js');

const ROOT = path.join(__dirname, '..');
const EXAMPLE = path.join(ROOT, 'example');

test('the example carries the current helper (run `npm run sync-example` after editing wechat-auth.js)', () => {
  const original = fs.readFileSync(path.join(ROOT, 'wechat-auth.js'), 'utf8');
  const copy = fs.readFileSync(path.join(EXAMPLE, 'utils', 'wechat-auth.js'), 'utf8');
  assert.ok(copy === original, 'example/utils/wechat-auth.js differs from wechat-auth.js');
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
  global.wx = wx;

  let appObject;
  let pageDef;
  global.App = (def) => { appObject = def; };
  global.getApp = () => appObject;
  global.Page = (def) => { pageDef = def; };
  require(path.join(EXAMPLE, 'app.js'));
  appObject.onLaunch();
  require(path.join(EXAMPLE, 'pages', 'index', 'index.js'));

  // A minimal page instance: setData merges into data.
  const page = Object.assign({}, pageDef, { data: Object.assign({}, pageDef.data) });
  let shows = 0;
  page.setData = (d) => {
    Object.assign(page.data, d);
    if ('result' in d) shows++;
  };
  // Page handlers return nothing; wait until the page shows a new result.
  let seen = 0;
  const shown = async () => {
    const until = Date.now() + 5000;
    while (shows === seen && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    assert.ok(shows > seen, 'the page showed nothing');
    seen = shows;
  };

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
