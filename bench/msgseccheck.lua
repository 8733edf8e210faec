-- A content check (POST /wxa/msg_sec_check) as an upstream sends it; used
-- by bench/gateway.sh for both sites.
wrk.method = "POST"
wrk.body = '{"content":"hello world","version":2,"scene":2,"openid":"oBench000000000000000000001"}'
wrk.headers["Content-Type"] = "application/json"
