// The example's "pay" button: the upstream's order answer carries
// `payment`; in sandbox the page pays through Caddy's /wx/sandbox/pay, else
// it spreads `payment` into wx.requestPayment. The page's WXML is rendered
// by miniprogram-simulate and the button tapped.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const simulate = require('../testlib/simulate.js');
const { createStubWx } = require('../testlib/fake-wx.js');
const { createStubServer } = require('../testlib/stub-server.js');
const { loadExamplePage, EXAMPLE } = require('../testlib/example-page.js');

const PAYMENT = {
  appId: 'wxsandbox0000000', timeStamp: '1796457322', nonceStr: 'rt935jMgbcEyugZypW57RE3vnHoLK470',
  package: 'prepay_id=wx05155522hXHHdIojDpHmQJwz0001', signType: 'RSA', paySign: 'c2lnbmF0dXJl',
};

function payServer() {
  const server = createStubServer();
  server.routes['/api/me'] = (req, openid) => ({ statusCode: 200, data: { openid } });
  server.routes['/api/pay'] = (req) => {
    if (req.method !== 'POST') return { statusCode: 405, data: {} };
    return { statusCode: 200, data: { prepay_id: 'wx05155522hXHHdIojDpHmQJwz0001', payment: PAYMENT } };
  };
  server.paid = [];
  server.routes['/wx/sandbox/pay'] = (req, openid) => {
    server.paid.push({ prepay_id: req.body && req.body.prepay_id, openid });
    return { statusCode: 200, data: { out_trade_no: 'DEMO1', trade_state: 'SUCCESS', notify_status: 204 } };
  };
  return server;
}

// tapPay renders the page's WXML with its data, its pay handler bound to
// the page, and taps the pay button.
async function tapPay(page) {
  const template = fs.readFileSync(path.join(EXAMPLE, 'pages', 'index', 'index.wxml'), 'utf8');
  const comp = simulate.render(simulate.load({
    template,
    data: page.data,
    methods: { pay: () => page.pay(), callApi() {}, logout() {}, onGetPhoneNumber() {} },
  }));
  comp.attach(document.createElement('parent-wrapper'));
  const button = comp.querySelector('.pay');
  assert.ok(button, 'the page has a pay button');
  assert.match(button.dom.textContent, /Pay/);
  button.dispatchEvent('tap');
}

test('in sandbox the pay button pays the order through /wx/sandbox/pay', async () => {
  const server = payServer();
  const wx = createStubWx(server.handle);
  const { page, shown } = loadExamplePage(wx);
  page.onLoad();
  await shown();
  await tapPay(page);
  await shown();
  assert.equal(page.data.title, 'Paid (sandbox)');
  assert.match(page.data.result, /SUCCESS/);
  assert.deepEqual(server.paid, [{ prepay_id: 'wx05155522hXHHdIojDpHmQJwz0001', openid: 'o-code-1' }]);
});

// payWithMerchant loads the example with sandboxPay off, its
// wx.requestPayment being requestPayment, and taps the pay button; it
// returns the page and the stub server.
async function payWithMerchant(requestPayment) {
  const config = require(path.join(EXAMPLE, 'config.js'));
  config.sandboxPay = false;
  try {
    const server = payServer();
    const wx = createStubWx(server.handle);
    wx.requestPayment = requestPayment;
    // Another load of the example: the first one's modules are cached.
    for (const f of ['app.js', 'pages/index/index.js']) delete require.cache[path.join(EXAMPLE, f)];
    const { page, shown } = loadExamplePage(wx);
    page.onLoad();
    await shown();
    await tapPay(page);
    await shown();
    return { page, server };
  } finally {
    config.sandboxPay = true;
  }
}

test('with a real merchant the pay button spreads payment into wx.requestPayment', async () => {
  const calls = [];
  const { page, server } = await payWithMerchant((opts) => { calls.push(opts); opts.success({ errMsg: 'requestPayment:ok' }); });
  assert.equal(page.data.title, 'Paid');
  assert.equal(calls.length, 1);
  for (const k of Object.keys(PAYMENT)) assert.equal(calls[0][k], PAYMENT[k], k);
  assert.equal(server.paid.length, 0);
});

test('a user who closes the payment sheet sees it cancelled, not failed', async () => {
  const { page } = await payWithMerchant((opts) => opts.fail({ errMsg: 'requestPayment:fail cancel' }));
  assert.equal(page.data.title, 'Payment cancelled');
  assert.equal(page.data.result, 'requestPayment:fail cancel');
});
