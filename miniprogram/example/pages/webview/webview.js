// Opens a page of the web site in a <web-view>, already logged in: the
// helper asks Caddy for a one-time link (no token in it) that sets a cookie
// session for this user. Open it as /pages/webview/webview?path=%2Fshop%2F.
const app = getApp();

Page({
  data: {
    url: '',
    error: '',
  },

  onLoad(query) {
    const path = query && query.path ? decodeURIComponent(query.path) : '/';
    app.auth.webviewURL(path)
      .then((url) => this.setData({ url }))
      .catch((err) => this.setData({ error: 'Could not open the page (' + (err.code || err.statusCode || 'network') + ')' }));
  },
});
