const app = getApp();
const config = require('../../config.js');

function pretty(value) {
  return typeof value === 'string' ? value : JSON.stringify(value, null, 2);
}

Page({
  data: {
    signedIn: false,
    title: '',
    result: '',
  },

  onLoad() {
    this.callApi();
  },

  show(title, value) {
    this.setData({ title, result: pretty(value), signedIn: !!app.auth.getToken() });
  },

  // One line per API call: login, the token and one re-login on 401 are the
  // helper's job. Any status resolves; only network errors reject.
  callApi() {
    app.auth.request({ url: '/api/me' })
      .then((res) => this.show('GET /api/me → ' + res.statusCode, res.data))
      .catch((err) => this.show('GET /api/me failed', err.message));
  },

  onGetPhoneNumber(e) {
    app.auth.getPhoneNumber(e.detail)
      .then((phone) => this.show('Phone number', phone))
      .catch((err) => {
        if (err.code === 'no_data') return this.show('Phone number not shared', err.errMsg || '');
        this.show('Phone number failed (' + (err.code || err.statusCode || 'network') + ')', err.message);
      });
  },

  // The upstream creates the order through wechat_pay and returns WeChat
  // Pay's answer, which holds `payment`, ready for wx.requestPayment. In
  // sandbox, Caddy's /wx/sandbox/pay pays it instead, and the upstream gets
  // the TRANSACTION.SUCCESS callback as it would from WeChat Pay.
  pay() {
    app.auth.request({ url: '/api/pay', method: 'POST' })
      .then((res) => {
        const payment = res.data && res.data.payment;
        if (res.statusCode !== 200 || !payment) throw Object.assign(new Error('no order'), { statusCode: res.statusCode });
        if (config.sandboxPay) {
          const prepayID = payment.package.replace(/^prepay_id=/, '');
          return app.auth.request({ url: '/wx/sandbox/pay', method: 'POST', data: { prepay_id: prepayID } })
            .then((paid) => this.show(paid.statusCode === 200 ? 'Paid (sandbox)' : 'Sandbox pay → ' + paid.statusCode, paid.data));
        }
        return new Promise((resolve, reject) => wx.requestPayment(Object.assign({}, payment, { success: resolve, fail: reject })))
          .then(() => this.show('Paid', 'Your upstream learns it from the TRANSACTION.SUCCESS callback.'));
      })
      // wx.requestPayment fails with "requestPayment:fail cancel" when the
      // user closes the payment sheet: nothing went wrong.
      .catch((err) => this.show(/cancel/.test(err.errMsg || '') ? 'Payment cancelled' : 'Payment failed', err.errMsg || err.message));
  },

  logout() {
    app.auth.logout().then(() => this.show('Logged out', 'The next API call logs in again.'));
  },
});
