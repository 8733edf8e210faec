// Where Caddy with wechat_auth listens. In WeChat DevTools an http:// address
// works once "Do not verify valid domain names" is ticked (urlCheck: false in
// project.config.json). A phone needs an HTTPS domain listed in the mini
// program's admin console.
module.exports = {
  baseURL: 'http://127.0.0.1:8080',
};
