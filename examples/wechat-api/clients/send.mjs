// Node 18+: a subscription message and a virtual payment's user signature
// through the gateway. No SDK, no AppSecret, no access token.
const gateway = process.env.WECHAT_API ?? "http://127.0.0.1:9001";
const openid = process.argv[2] ?? "oUser00000000000000000000001";

const sent = await fetch(`${gateway}/cgi-bin/message/subscribe/send`, {
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify({
    touser: openid,
    template_id: "tmpl-1",
    data: { thing1: { value: "Your order shipped" } },
  }),
});
console.log(sent.status, await sent.json());

// signData must be signed byte for byte as it is passed to the client.
const signData = JSON.stringify({ offerId: "123", buyQuantity: 1, env: 0, currencyType: "CNY", productId: "p1", goodsPrice: 100, outTradeNo: "t-1", attach: "" });
const sig = await fetch(`${gateway}/wechat_auth/user_signature?openid=${openid}`, { method: "POST", body: signData });
console.log(sig.status, await sig.json());
