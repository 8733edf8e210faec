// Where Caddy with wechat_auth listens. In WeChat DevTools an http:// address
// works once "Do not verify valid domain names" is ticked (urlCheck: false in
// project.config.json). A phone needs an HTTPS domain listed in the mini
// program's admin console.
//
// sandboxPay: the "pay" button pays through Caddy's sandbox
// (POST /wx/sandbox/pay) instead of wx.requestPayment, so an order flow runs
// with no merchant account. Set it to false with a real merchant.
module.exports = {
  baseURL: 'http://127.0.0.1:8080',
  sandboxPay: true,
};
