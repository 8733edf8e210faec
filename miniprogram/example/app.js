// The helper must sit inside the mini program project; utils/wechat-auth.js
// is a copy of ../wechat-auth.js (refresh it with `npm run sync-example`).
const { createAuth } = require('./utils/wechat-auth.js');
const config = require('./config.js');

const auth = createAuth({ baseURL: config.baseURL });

App({
  auth,
  onLaunch() {
    // Optional: request() logs in by itself when needed. Logging in early
    // makes the first API call faster; a request made meanwhile waits for
    // this same login instead of starting another.
    if (!auth.getToken()) {
      auth.login().catch((err) => console.warn('wechat_auth login failed:', err.code || '', err.message));
    }
  },
});
