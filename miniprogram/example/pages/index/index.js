const app = getApp();

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

  logout() {
    app.auth.logout().then(() => this.show('Logged out', 'The next API call logs in again.'));
  },
});
