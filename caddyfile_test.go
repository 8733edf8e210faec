package wechatauth

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
)

// parseBlock parses a wechat_auth block and returns the handler's JSON.
func parseBlock(t *testing.T, input string) (map[string]any, error) {
	t.Helper()
	var h Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
		return nil, err
	}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	return m, nil
}

func TestCaddyfileSubdirectivesFillTheirJSONFields(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  string // the handler's JSON
	}{
		{"empty block", `wechat_auth`, `{}`},
		{"app_id and app_secret", `wechat_auth {
			app_id wx123
			app_secret {env.WECHAT_SECRET}
		}`, `{"apps":[{"app_id":"wx123","app_secret":"{env.WECHAT_SECRET}"}]}`},
		{"several apps", `wechat_auth {
			app wxA secretA
			app wxB {file./run/secrets/b}
		}`, `{"apps":[{"app_id":"wxA","app_secret":"secretA"},{"app_id":"wxB","app_secret":"{file./run/secrets/b}"}]}`},
		{"app_id first, then app", `wechat_auth {
			app wxB sb
			app_id wxA
			app_secret sa
		}`, `{"apps":[{"app_id":"wxA","app_secret":"sa"},{"app_id":"wxB","app_secret":"sb"}]}`},
		{"api_base", `wechat_auth {
			api_base http://127.0.0.1:9000
		}`, `{"api_base":"http://127.0.0.1:9000"}`},
		{"sandbox", `wechat_auth {
			sandbox
		}`, `{"sandbox":true}`},
		{"route_prefix", `wechat_auth {
			route_prefix /auth
		}`, `{"route_prefix":"/auth"}`},
		{"signing_key", `wechat_auth {
			signing_key 0123456789abcdef0123456789abcdef
		}`, `{"signing_key":"0123456789abcdef0123456789abcdef"}`},
		{"signing_key placeholder", `wechat_auth {
			signing_key {env.KEY}
		}`, `{"signing_key":"{env.KEY}"}`},
		{"token_ttl", `wechat_auth {
			token_ttl 30m
		}`, `{"token_ttl":1800000000000}`},
		{"session_ttl in days", `wechat_auth {
			session_ttl 3d
		}`, `{"session_ttl":259200000000000}`},
		{"timeout", `wechat_auth {
			timeout 2s
		}`, `{"timeout":2000000000}`},
		{"optional", `wechat_auth {
			optional
		}`, `{"optional":true}`},
		{"forward_profile", `wechat_auth {
			forward_profile
		}`, `{"forward_profile":true}`},
		{"header names", `wechat_auth {
			header_openid X-User
			header_unionid X-Union
			header_appid X-App
		}`, `{"header_openid":"X-User","header_unionid":"X-Union","header_appid":"X-App"}`},
		{"max_sessions", `wechat_auth {
			max_sessions 5000
		}`, `{"max_sessions":5000}`},
		{"store memory", `wechat_auth {
			store memory
		}`, `{}`},
		{"store redis", `wechat_auth {
			store redis redis://:{env.REDIS_PASSWORD}@127.0.0.1:6379/2
		}`, `{"store":"redis://:{env.REDIS_PASSWORD}@127.0.0.1:6379/2"}`},
		{"store rediss", `wechat_auth {
			store redis rediss://redis.example.com:6380
		}`, `{"store":"rediss://redis.example.com:6380"}`},
		{"store placeholder", `wechat_auth {
			store redis {env.REDIS_URL}
		}`, `{"store":"{env.REDIS_URL}"}`},
		{"store redis over a unix socket", `wechat_auth {
			store redis unix:///run/redis/redis.sock
		}`, `{"store":"unix:///run/redis/redis.sock"}`},
		{"public paths, repeatable", `wechat_auth {
			public /health /static/*
			public *.png
		}`, `{"public_paths":["/health","/static/*","*.png"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseBlock(t, tt.input)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			var want map[string]any
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(want)
			if string(gb) != string(wb) {
				t.Fatalf("JSON\n got %s\nwant %s", gb, wb)
			}
		})
	}
}

// loadBlock parses a wechat_auth block and provisions it, as `caddy run`
// does: syntax errors come from the parser, the rest from Provision.
func loadBlock(t *testing.T, input string) error {
	t.Helper()
	var h Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
		return err
	}
	return provision(t, &h)
}

func TestCaddyfileErrorsNameTheProblem(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		mention []string
	}{
		{"unknown subdirective", "wechat_auth {\n frobnicate yes\n}", []string{"unknown subdirective", "frobnicate"}},
		{"misspelt subdirective", "wechat_auth {\n appid wx1\n}", []string{"unknown subdirective", "appid"}},
		{"argument on the directive", "wechat_auth wx1", []string{"wrong argument count"}},
		{"short signing key", "wechat_auth {\n sandbox\n signing_key tooshort\n}", []string{"signing_key", "8 bytes", "32"}},
		{"signing key of 31 bytes", "wechat_auth {\n sandbox\n signing_key 0123456789abcdef0123456789abcde\n}", []string{"signing_key", "31 bytes"}},
		{"store redis without scheme", "wechat_auth {\n sandbox\n store redis 127.0.0.1:6379\n}", []string{"store", "redis://"}},
		{"store redis http URL", "wechat_auth {\n sandbox\n store redis http://127.0.0.1:6379\n}", []string{"store", "redis://"}},
		{"store redis without URL", "wechat_auth {\n store redis\n}", []string{"store"}},
		{"store of an unknown kind", "wechat_auth {\n store etcd http://x\n}", []string{"store"}},
		{"store without argument", "wechat_auth {\n store\n}", []string{"store"}},
		{"app_id without value", "wechat_auth {\n app_id\n}", []string{"app_id", "needs a value"}},
		{"app_id with two values", "wechat_auth {\n app_id wx1 wx2\n}", []string{"app_id", "one value"}},
		{"app_secret without app_id", "wechat_auth {\n app_secret s\n}", []string{"app_secret", "app_id"}},
		{"app with no arguments", "wechat_auth {\n app\n}", []string{"app"}},
		{"app with three arguments", "wechat_auth {\n app wx1 s extra\n}", []string{"app"}},
		{"route_prefix without slash", "wechat_auth {\n sandbox\n route_prefix wx\n}", []string{"route_prefix", "/"}},
		{"token_ttl not a duration", "wechat_auth {\n token_ttl soon\n}", []string{"token_ttl", "soon", "such as 90s"}},
		{"token_ttl past time.Duration", "wechat_auth {\n token_ttl 9999999h\n}", []string{"token_ttl", "longer than 290 years"}},
		{"token_ttl negative", "wechat_auth {\n sandbox\n token_ttl -1h\n}", []string{"token_ttl"}},
		{"max_sessions negative", "wechat_auth {\n sandbox\n max_sessions -5\n}", []string{"max_sessions"}},
		{"public without a path", "wechat_auth {\n public\n}", []string{"public"}},
		{"session_ttl zero", "wechat_auth {\n session_ttl 0s\n}", []string{"session_ttl"}},
		{"timeout not a duration", "wechat_auth {\n timeout 5\n}", []string{"timeout"}},
		{"max_sessions zero", "wechat_auth {\n max_sessions 0\n}", []string{"max_sessions"}},
		{"max_sessions not a number", "wechat_auth {\n max_sessions lots\n}", []string{"max_sessions", "lots"}},
		// Its cache is made at that size: 1e10 ran the process out of memory.
		{"max_sessions too large", "wechat_auth {\n sandbox\n max_sessions 1000000000000000\n}", []string{"max_sessions", "10000000", "store redis"}},
		{"route_prefix with a star", "wechat_auth {\n sandbox\n route_prefix /wx/*\n}", []string{"route_prefix", "/wx/*"}},
		{"route_prefix with a query", "wechat_auth {\n sandbox\n route_prefix /wx?a\n}", []string{"route_prefix"}},
		{"route_prefix with a dot-dot segment", "wechat_auth {\n sandbox\n route_prefix /../wx\n}", []string{"route_prefix"}},
		{"public without a leading slash", "wechat_auth {\n sandbox\n public health\n}", []string{"public", "health", "'/'"}},
		{"public resolving to nothing", "wechat_auth {\n sandbox\n public {env.WECHAT_AUTH_TEST_UNSET}\n}", []string{"public", "resolves to nothing"}},
		{"web app resolving to nothing", "wechat_auth {\n app wx1234567890abcdef s\n app wxb1b1b1b1b1b1b1b1 s3\n web {\n  oa_app {env.WECHAT_AUTH_TEST_UNSET}\n  qr_app wxb1b1b1b1b1b1b1b1\n  return_to https://example.com/\n }\n}", []string{"oa_app", "resolves to nothing"}},
		{"store resolving to nothing", "wechat_auth {\n sandbox\n store redis {env.WECHAT_AUTH_TEST_UNSET}\n}", []string{"store", "resolves to nothing"}},
		{"sandbox with an argument", "wechat_auth {\n sandbox on\n}", []string{"sandbox"}},
		{"optional with an argument", "wechat_auth {\n optional yes\n}", []string{"optional"}},
		{"forward_profile with an argument", "wechat_auth {\n forward_profile yes\n}", []string{"forward_profile"}},
		{"header_openid without value", "wechat_auth {\n header_openid\n}", []string{"header_openid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := loadBlock(t, tt.input)
			if err == nil {
				t.Fatal("loaded")
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

func TestCaddyfileErrorsNeverEchoTheSigningKey(t *testing.T) {
	err := loadBlock(t, "wechat_auth {\n sandbox\n signing_key SHORTsecret\n}")
	if err == nil || strings.Contains(err.Error(), "SHORTsecret") {
		t.Fatalf("error %v", err)
	}
}

// An AppSecret written where an AppID goes (app's two arguments swapped,
// or app_id naming the secret's variable) is refused and never repeated:
// taken as an appid, it was printed in errors and sent as X-WX-APPID.
func TestSecretInAnAppIDsPlaceIsRefusedUnrepeated(t *testing.T) {
	const secret = "0123456789abcdef0123456789ABCDEF"
	t.Setenv("WECHAT_AUTH_TEST_SWAPPED", secret)
	const key = "q3Jt0m5cW8yZb1N4dF7hK2pX9sV6gA0eR3uL5oI8nE1="
	t.Setenv("WECHAT_AUTH_TEST_KEY", key)
	for name, input := range map[string]string{
		"sandbox, app's arguments swapped":   "wechat_auth {\n sandbox\n app " + secret + " wx1234567890abcdef\n}",
		"app's arguments swapped":            "wechat_auth {\n app {env.WECHAT_AUTH_TEST_SWAPPED} wx1234567890abcdef\n}",
		"app_id naming the secret":           "wechat_auth {\n app_id {env.WECHAT_AUTH_TEST_SWAPPED}\n app_secret wx1234567890abcdef\n}",
		"web app naming the secret, sandbox": "wechat_auth {\n sandbox\n web {\n  oa_app {env.WECHAT_AUTH_TEST_SWAPPED}\n  return_to https://example.com/\n }\n}",
		"web app naming the secret":          "wechat_auth {\n app wx1234567890abcdef s\n web {\n  oa_app " + secret + "\n  return_to https://example.com/\n }\n}",
		"app_id naming a signing key":        "wechat_auth {\n app_id {env.WECHAT_AUTH_TEST_KEY}\n}",
		"app naming a signing key":           "wechat_auth {\n app {env.WECHAT_AUTH_TEST_KEY} wx1234567890abcdef\n}",
		"web app naming a signing key":       "wechat_auth {\n app wx1234567890abcdef s\n web {\n  qr_app {env.WECHAT_AUTH_TEST_KEY}\n  return_to https://example.com/\n }\n}",
	} {
		t.Run(name, func(t *testing.T) {
			err := loadBlock(t, input)
			if err == nil {
				t.Fatal("loaded")
			}
			msg := err.Error()
			if !strings.Contains(msg, "AppSecret") && !strings.Contains(msg, "is not an AppID") ||
				strings.Contains(strings.ToLower(msg), strings.ToLower(secret)) || strings.Contains(msg, key[:16]) {
				t.Errorf("error %q", err)
			}
		})
	}
}

// A secret of an appid's form (a push Token, an alphanumeric APIv3 key)
// named as an app passes the appid rule; errors still name the app as
// the config writes it, never by what its placeholder resolves to.
func TestErrorsNameAppsAsWritten(t *testing.T) {
	const value = "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
	t.Setenv("WECHAT_AUTH_TEST_APP", value)
	t.Setenv("WECHAT_AUTH_TEST_SAME", value)
	for name, input := range map[string]string{
		"no secret":              "wechat_auth {\n app_id {env.WECHAT_AUTH_TEST_APP}\n}",
		"sandbox and secret":     "wechat_auth {\n sandbox\n app {env.WECHAT_AUTH_TEST_APP} s\n}",
		"the same app twice":     "wechat_auth {\n sandbox\n app {env.WECHAT_AUTH_TEST_APP}\n app {env.WECHAT_AUTH_TEST_SAME}\n}",
		"web app without secret": "wechat_auth {\n app wx1234567890abcdef s\n web {\n  oa_app {env.WECHAT_AUTH_TEST_APP}\n  return_to https://example.com/\n }\n}",
	} {
		t.Run(name, func(t *testing.T) {
			err := loadBlock(t, input)
			if err == nil || strings.Contains(err.Error(), value) || !strings.Contains(err.Error(), "{env.WECHAT_AUTH_TEST_") {
				t.Errorf("error %v", err)
			}
		})
	}
}

// oa_app and qr_app read placeholders as app_id does: an app named by
// {env.…} in both places is one app. They were taken as written, so the
// app's secret was never found for them.
func TestWebAppsTakePlaceholders(t *testing.T) {
	t.Setenv("WECHAT_AUTH_TEST_OA", "wxa0a0a0a0a0a0a0a0")
	t.Setenv("WECHAT_AUTH_TEST_QR", "wxb1b1b1b1b1b1b1b1")
	web := "\n web {\n  oa_app {env.WECHAT_AUTH_TEST_OA}\n  qr_app {env.WECHAT_AUTH_TEST_QR}\n  return_to https://example.com/\n }\n}"
	for name, input := range map[string]string{
		"apps named by placeholders": "wechat_auth {\n app wx1234567890abcdef s\n app {env.WECHAT_AUTH_TEST_OA} s2\n app {env.WECHAT_AUTH_TEST_QR} s3" + web,
		"apps written as they are":   "wechat_auth {\n app wx1234567890abcdef s\n app wxa0a0a0a0a0a0a0a0 s2\n app wxb1b1b1b1b1b1b1b1 s3" + web,
		"sandbox":                    "wechat_auth {\n sandbox" + web,
	} {
		t.Run(name, func(t *testing.T) {
			if err := loadBlock(t, input); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A max_sessions too large for Caddy's JSON round trip (past 2^53) was
// adapted, and refused only when loaded, by a JSON error naming no line.
func TestCaddyfileMaxSessionsTooLargeIsRefusedWhereItStands(t *testing.T) {
	_, err := adapt(t, "http://127.0.0.1:1 {\n\twechat_auth {\n\t\tsandbox\n\t\tmax_sessions 9223372036854775807\n\t}\n}\n")
	if err == nil || !strings.Contains(err.Error(), "max_sessions: at most 10000000") || !strings.Contains(err.Error(), ":4") {
		t.Fatalf("adapt: %v", err)
	}
}

// adapt turns a whole Caddyfile into Caddy's JSON.
func adapt(t *testing.T, caddyfileText string) (string, error) {
	t.Helper()
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfileText), nil)
	return string(out), err
}

func TestCaddyfileDirectiveIsOrderedBeforeBasicAuth(t *testing.T) {
	out, err := adapt(t, `:8080 {
		respond "hello"
		basic_auth /admin/* {
			admin $2a$14$Zkx19XLiW6VYouLHR5NmfOFU0z2GTNmpkT/5qqR7hx4IjWJPDhjvG
		}
		wechat_auth {
			sandbox
		}
	}`)
	if err != nil {
		t.Fatal(err)
	}
	wa := strings.Index(out, `"handler":"wechat_auth"`)
	ba := strings.Index(out, `"handler":"authentication"`)
	rp := strings.Index(out, `"handler":"static_response"`)
	if wa < 0 || ba < 0 || rp < 0 {
		t.Fatalf("adapted config lacks a handler: %s", out)
	}
	if !(wa < ba && ba < rp) {
		t.Fatalf("handler order wechat_auth %d, basic_auth %d, respond %d: wechat_auth must run first without an order option\n%s", wa, ba, rp, out)
	}
}

func TestCaddyfileAdaptKeepsPlaceholdersNotSecrets(t *testing.T) {
	t.Setenv("WECHAT_SECRET", "the-real-secret-value")
	out, err := adapt(t, `:8080 {
		wechat_auth {
			app_id wx123
			app_secret {env.WECHAT_SECRET}
			signing_key {env.WECHAT_AUTH_KEY}
		}
	}`)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "the-real-secret-value") {
		t.Fatalf("caddy adapt shows the resolved secret: %s", out)
	}
	if !strings.Contains(out, `"app_secret":"{env.WECHAT_SECRET}"`) || !strings.Contains(out, `"signing_key":"{env.WECHAT_AUTH_KEY}"`) {
		t.Fatalf("placeholders not kept: %s", out)
	}
}

func TestCaddyfileAdaptErrorNamesTheSubdirective(t *testing.T) {
	_, err := adapt(t, ":8080 {\n wechat_auth {\n  sandbx\n }\n}")
	if err == nil || !strings.Contains(err.Error(), "sandbx") {
		t.Fatalf("err = %v, want one naming sandbx", err)
	}
}

// TestConfigErrorsStopLoading checks the errors Provision gives for
// configurations that parse but cannot work: what `caddy run` and
// `caddy validate` print.
func TestConfigErrorsStopLoading(t *testing.T) {
	t.Setenv("WECHAT_EMPTY", "")
	t.Setenv("WECHAT_SHORT_KEY", "short")
	rsaDER, p384DER, app := assertionTestKeys()
	tests := []struct {
		name    string
		h       Handler
		mention []string
	}{
		{"no app", Handler{}, []string{"no app", "app_id"}},
		{"missing secret", Handler{Apps: []App{{AppID: "wx1"}}}, []string{"app_secret", "wx1", "missing"}},
		{"secret placeholder resolving to nothing", Handler{Apps: []App{{AppID: "wx1", AppSecret: "{env.WECHAT_EMPTY}"}}}, []string{"app_secret", "wx1"}},
		{"sandbox with a secret", Handler{Sandbox: true, Apps: []App{{AppID: "wx1", AppSecret: "s"}}}, []string{"sandbox", "secret"}},
		{"short signing key", Handler{Apps: []App{{AppID: "wx1", AppSecret: "s"}}, SigningKey: "0123456789"}, []string{"signing_key", "10 bytes", "32"}},
		{"short signing key from a placeholder", Handler{Apps: []App{{AppID: "wx1", AppSecret: "s"}}, SigningKey: "{env.WECHAT_SHORT_KEY}"}, []string{"signing_key", "5 bytes", "32"}},
		{"signing key placeholder resolving to nothing", Handler{Apps: []App{{AppID: "wx1", AppSecret: "s"}}, SigningKey: "{env.WECHAT_EMPTY}"}, []string{"signing_key"}},
		{"same app twice", Handler{Apps: []App{{AppID: "wx1", AppSecret: "s"}, {AppID: "wx1", AppSecret: "t"}}}, []string{"wx1", "twice"}},
		{"empty app_id", Handler{Apps: []App{{AppID: "", AppSecret: "s"}}}, []string{"app_id"}},
		{"api_base not a URL", Handler{Apps: []App{{AppID: "wx1", AppSecret: "s"}}, APIBase: "api.weixin.qq.com"}, []string{"api_base"}},
		{"api_base ftp", Handler{Apps: []App{{AppID: "wx1", AppSecret: "s"}}, APIBase: "ftp://x"}, []string{"api_base"}},
		{"bad header name", Handler{Apps: []App{{AppID: "wx1", AppSecret: "s"}}, HeaderOpenID: "X User"}, []string{"X User", "header"}},
		// JSON config is held to what the Caddyfile refuses: no silent default.
		{"negative token_ttl", Handler{Sandbox: true, TokenTTL: caddy.Duration(-5 * time.Minute)}, []string{"token_ttl", "-5m"}},
		{"negative session_ttl", Handler{Sandbox: true, SessionTTL: -1}, []string{"session_ttl"}},
		{"negative timeout", Handler{Sandbox: true, Timeout: caddy.Duration(-time.Second)}, []string{"timeout"}},
		{"route_prefix without its slash", Handler{Sandbox: true, RoutePrefix: "auth/"}, []string{"route_prefix", "auth/"}},
		{"RSA key", Handler{Apps: app, Assertion: true, AssertionKey: "{file." + writePEM(t, "PRIVATE KEY", rsaDER) + "}"}, []string{"assertion key", "ECDSA P-256"}},
		{"P-384 key", Handler{Apps: app, Assertion: true, AssertionKey: "{file." + writePEM(t, "PRIVATE KEY", p384DER) + "}"}, []string{"assertion key", "P-256"}},
		{"a path, not a PEM", Handler{Apps: app, Assertion: true, AssertionKey: "/etc/key.pem"}, []string{"assertion key", "{file."}},
		{"a certificate", Handler{Apps: app, Assertion: true, AssertionKey: certificatePEM}, []string{"CERTIFICATE"}},
		{"key without assertion", Handler{Apps: app, AssertionKey: "{file./x}"}, []string{"assertion_key", "assertion"}},
		{"header without assertion", Handler{Apps: app, AssertionHeader: "X-A"}, []string{"assertion_header"}},
		{"bad header name", Handler{Apps: app, Assertion: true, AssertionHeader: "X A"}, []string{"X A", "header"}},
		{"header taken by the openid", Handler{Apps: app, Assertion: true, AssertionHeader: "x-wx-openid"}, []string{"x-wx-openid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.h
			err := provision(t, &h)
			if err == nil {
				t.Fatal("provisioned")
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
			if strings.Contains(err.Error(), "short\"") || strings.Contains(err.Error(), "0123456789") {
				t.Errorf("error %q shows the key", err)
			}
		})
	}
}

// The wechat global option becomes apps.wechat, read by the parser of the
// lines the handlers share; a line it does not know is an error.
func TestCaddyfileWeChatGlobalOption(t *testing.T) {
	out, err := adapt(t, `{
	wechat {
		app wx1234567890abcdef {env.WECHAT_APP_SECRET}
		api_base http://127.0.0.1:9
		timeout 3s
		signing_key {env.KEY} {env.OLD_KEY}
		store redis {
			addrs 10.0.0.1:6379
		}
	}
}
:8080 {
	wechat_auth
	respond ok
}`)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps struct {
			WeChat json.RawMessage `json:"wechat"`
		} `json:"apps"`
	}
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatal(err)
	}
	want := `{"apps":[{"app_id":"wx1234567890abcdef","app_secret":"{env.WECHAT_APP_SECRET}"}],"api_base":"http://127.0.0.1:9","timeout":3000000000,"redis":{"addrs":["10.0.0.1:6379"]},"signing_key":"{env.KEY}","previous_signing_keys":["{env.OLD_KEY}"]}`
	if string(cfg.Apps.WeChat) != want {
		t.Fatalf("apps.wechat\n%s\nwant\n%s", cfg.Apps.WeChat, want)
	}
	if _, err := adapt(t, "{\n\twechat {\n\t\troute_prefix /x\n\t}\n}\n:8080 {\n\trespond ok\n}"); err == nil || !strings.Contains(err.Error(), `unknown subdirective "route_prefix"`) {
		t.Fatalf("a handler-only line in the wechat option: %v", err)
	}
	// A second block would replace the first, its apps and keys with it.
	if _, err := adapt(t, "{\n\twechat {\n\t\tapp wx1234567890abcdef {env.S}\n\t}\n\twechat {\n\t\tsandbox\n\t}\n}\n:8080 {\n\trespond ok\n}"); err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Fatalf("two wechat blocks: %v", err)
	}
}
