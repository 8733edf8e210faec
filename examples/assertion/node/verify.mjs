// An upstream's check of wechat_auth's identity assertion, with jose: the
// keys come from {route_prefix}/jwks.json (fetched once and cached by
// createRemoteJWKSet), the signature must be ES256, the issuer wechat_auth,
// the audience your appid, and the assertion unexpired.
//
//   node verify.mjs <jwks-url> <appid> <assertion>
//   (or WX_JWKS_URL, WX_APPID, WX_ASSERTION in the environment)
//
// Prints the verified claims as JSON; exits 1 when the assertion is refused.
// In an HTTP server, read the assertion from the X-WX-ASSERTION header
// (request.headers['x-wx-assertion']) and use payload.sub as the openid.
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [jwksUrl, appid, assertion] = [
  process.argv[2] ?? process.env.WX_JWKS_URL,
  process.argv[3] ?? process.env.WX_APPID,
  process.argv[4] ?? process.env.WX_ASSERTION,
];
if (!jwksUrl || !appid || !assertion) {
  console.error('usage: node verify.mjs <jwks-url> <appid> <assertion>');
  process.exit(2);
}

const jwks = createRemoteJWKSet(new URL(jwksUrl));

try {
  const { payload } = await jwtVerify(assertion, jwks, {
    issuer: 'wechat_auth',
    audience: appid,
    algorithms: ['ES256'],
    requiredClaims: ['sub', 'iat', 'exp'],
  });
  console.log(JSON.stringify(payload));
} catch (err) {
  console.error(`assertion refused: ${err.code ?? err.name}: ${err.message}`);
  process.exit(1);
}
