// The web-view handoff: auth.webviewURL asks Caddy for a one-time link, and
// the example's web-view page renders it (miniprogram-simulate renders the
// page's WXML as the mini program runtime would).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const simulate = require('../testlib/simulate.js');
const { createAuth } = require('../wechat-auth.js');
const { createStubWx } = require('../testlib/fake-wx.js');
const { createStubServer } = require('../testlib/stub-server.js');
const { EXAMPLE } = require('../testlib/example-page.js');

const LINK = 'http://127.0.0.1:8080/wx/web/handoff?ticket=T0000000000000000000000000000000000000000000';

function handoffServer() {
  const server = createStubServer();
  server.routes['/wx/web/handoff'] = (req) => {
    if (req.method !== 'POST') return { statusCode: 405, data: { error: 'invalid_request' } };
    if (!req.body || req.body.return_to !== '/shop/') {
      return { statusCode: 400, data: { error: 'invalid_request', message: 'return_to is not allowed' } };
    }
    return { statusCode: 200, data: { url: LINK } };
  };
  return server;
}

test('webviewURL posts return_to with the token and resolves to the link', async () => {
  const wx = createStubWx(handoffServer().handle);
  const auth = createAuth({ baseURL: 'http://127.0.0.1:8080', wx });
  assert.equal(await auth.webviewURL('/shop/'), LINK);
  const req = wx.requests.find((r) => r.path === '/wx/web/handoff');
  assert.match(req.authorization, /^Bearer tok-/);
  assert.deepEqual(req.body, { return_to: '/shop/' });
});

test('webviewURL rejects with the server error for a return_to it refuses', async () => {
  const wx = createStubWx(handoffServer().handle);
  const auth = createAuth({ baseURL: 'http://127.0.0.1:8080', wx });
  await assert.rejects(auth.webviewURL('https://evil.example/'), (err) => err.statusCode === 400 && err.code === 'invalid_request');
});

// loadWebviewPage runs the example's web-view page with App/Page/getApp
// stand-ins and returns its definition with data updated by setData.
function loadWebviewPage(wx) {
  global.wx = wx;
  let appObject;
  let pageDef;
  global.App = (def) => { appObject = def; };
  global.getApp = () => appObject;
  global.Page = (def) => { pageDef = def; };
  for (const f of ['app.js', 'pages/webview/webview.js']) delete require.cache[path.join(EXAMPLE, f)];
  require(path.join(EXAMPLE, 'app.js'));
  appObject.onLaunch();
  require(path.join(EXAMPLE, 'pages', 'webview', 'webview.js'));
  const page = Object.assign({}, pageDef, { data: Object.assign({}, pageDef.data) });
  page.changed = new Promise((resolve) => {
    page.setData = (d) => { Object.assign(page.data, d); resolve(); };
  });
  return page;
}

// render renders the page's WXML with data. simulate keeps no attribute of
// a built-in it does not know, so <web-view> is a stand-in that shows its
// src.
function render(data) {
  const template = fs.readFileSync(path.join(EXAMPLE, 'pages', 'webview', 'webview.wxml'), 'utf8');
  const webView = simulate.load({ template: '<view class="web-view-src">{{src}}</view>', properties: { src: { type: String, value: '' } } });
  const comp = simulate.render(simulate.load({ template, data, usingComponents: { 'web-view': webView } }));
  comp.attach(document.createElement('parent-wrapper'));
  return comp;
}

test('the example web-view page opens the link in a <web-view>', async () => {
  const wx = createStubWx(handoffServer().handle);
  const page = loadWebviewPage(wx);
  page.onLoad({ path: encodeURIComponent('/shop/') });
  await page.changed;
  assert.equal(page.data.url, LINK);
  const shown = render(page.data).querySelector('#site');
  assert.ok(shown, 'no <web-view>');
  assert.equal(shown.dom.textContent, LINK);
  assert.doesNotMatch(shown.dom.textContent, /tok-/);
});

test('the example web-view page shows why when there is no link', async () => {
  const wx = createStubWx(handoffServer().handle);
  const page = loadWebviewPage(wx);
  page.onLoad({ path: encodeURIComponent('/elsewhere') });
  await page.changed;
  assert.equal(page.data.url, '');
  const comp = render(page.data);
  assert.equal(comp.querySelector('#site'), undefined);
  assert.match(comp.dom.textContent, /Could not open the page \(invalid_request\)/);
});
