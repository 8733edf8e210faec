// A stand-in for Caddy's wechat_auth routes, answering the stub wx.request in
// unit tests. It follows the module's wire contract: tokens from
// /wx/login, Bearer checks with 401 {error: unauthorized | invalid_token}.
'use strict';

function createStubServer() {
  const s = {
    tokens: new Map(), // token -> openid
    issued: 0,
    refuseAll: false, // refuse every token, even fresh ones
    expiresIn: 7200,
    prefix: '/wx', // the server's route_prefix
    routes: {}, // path -> (req, openid) => response, for protected paths
  };

  function unauthorized(error) {
    return {
      statusCode: 401,
      header: { 'WWW-Authenticate': 'Bearer realm="wechat_auth"' },
      data: { error, message: 'log in again' },
    };
  }

  s.handle = (req) => {
    if (req.path === s.prefix + '/login') {
      if (!req.body || !req.body.code) {
        return { statusCode: 400, data: { error: 'invalid_request', message: 'code is missing' } };
      }
      const token = 'tok-' + ++s.issued;
      const openid = 'o-' + req.body.code;
      s.tokens.set(token, openid);
      return {
        statusCode: 200,
        data: { token, token_type: 'Bearer', expires_in: s.expiresIn, openid },
      };
    }
    const m = /^Bearer (.+)$/.exec(req.authorization || '');
    if (!m) return unauthorized('unauthorized');
    if (s.refuseAll || !s.tokens.has(m[1])) return unauthorized('invalid_token');
    const openid = s.tokens.get(m[1]);
    if (req.path === s.prefix + '/logout') {
      s.tokens.delete(m[1]);
      return { statusCode: 204 };
    }
    const route = s.routes[req.path];
    if (route) return route(req, openid);
    return { statusCode: 200, data: { path: req.path, openid } };
  };

  return s;
}

module.exports = { createStubServer };
