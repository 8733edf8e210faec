# Python 3, standard library only: a subscription message and a QR code
# through the gateway.
import json
import os
import sys
import urllib.request

gateway = os.environ.get("WECHAT_API", "http://127.0.0.1:9001")
openid = sys.argv[1] if len(sys.argv) > 1 else "oUser00000000000000000000001"


def post(path, payload):
    req = urllib.request.Request(
        gateway + path,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.headers.get("Content-Type"), resp.read()


status, _, body = post("/cgi-bin/message/subscribe/send", {
    "touser": openid,
    "template_id": "tmpl-1",
    "data": {"thing1": {"value": "Your order shipped"}},
})
print(status, json.loads(body))

status, ctype, body = post("/wxa/getwxacodeunlimit", {"scene": "order=42"})
if ctype.startswith("image/"):
    with open("qr.png", "wb") as f:
        f.write(body)
    print(status, ctype, len(body), "bytes written to qr.png")
else:
    print(status, json.loads(body))  # WeChat's errcode
