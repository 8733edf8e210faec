package caddytest

// Acceptance points covered here (issue 2 item 3, issue 5):
//   - An unknown subdirective, a missing secret (absent, or a placeholder
//     that resolves to nothing), a signing key under 32 bytes (written, or
//     from {env.*}), and sandbox together with a secret each stop Caddy from
//     loading, with a message that names the problem — and never the
//     secret itself.
//   - Other config mistakes are named too: no app at all, app_secret without
//     app_id, an api_base that is not a URL, a bad duration, an argument to
//     a flag.

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// validateCaddyfile does what `caddy validate --adapter caddyfile` does, in
// process: adapt, decode strictly, provision every module without starting
// anything.
func validateCaddyfile(caddyfile string) error {
	adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		return err
	}
	return validateJSON(adapted)
}

// validateJSON does what `caddy validate` does with a JSON config.
func validateJSON(config []byte) error {
	var cfg *caddy.Config
	if err := caddy.StrictUnmarshalJSON(caddy.RemoveMetaFields(config), &cfg); err != nil {
		return err
	}
	return caddy.Validate(cfg)
}

func TestConfigErrorsNameTheProblem(t *testing.T) {
	const secretValue = "do-not-echo-this-secret-9f8e7d6c5b4a"
	t.Setenv("WECHAT_AUTH_TEST_SHORT_KEY", "only-20-bytes-long!!")
	t.Setenv("WECHAT_AUTH_TEST_EMPTY", "")

	tests := []struct {
		name      string
		directive string
		want      []string // all must appear in the error
	}{
		{"unknown subdirective", "app_id wx1234567890abcdef\n\t\tapp_secret " + secretValue + "\n\t\tfrobnicate on",
			[]string{"unknown subdirective", "frobnicate"}},
		{"missing secret", "app_id wx1234567890abcdef",
			[]string{"app_secret", "missing"}},
		{"secret placeholder resolving to nothing", "app_id wx1234567890abcdef\n\t\tapp_secret {env.WECHAT_AUTH_TEST_EMPTY}",
			[]string{"app_secret", "missing"}},
		{"app line without secret", "app wx1234567890abcdef",
			[]string{"app_secret", "missing"}},
		{"short signing key", "app_id wx1234567890abcdef\n\t\tapp_secret " + secretValue + "\n\t\tsigning_key short-key",
			[]string{"signing_key", "32"}},
		{"short signing key from env", "app_id wx1234567890abcdef\n\t\tapp_secret " + secretValue + "\n\t\tsigning_key {env.WECHAT_AUTH_TEST_SHORT_KEY}",
			[]string{"signing_key", "32"}},
		{"sandbox with a secret", "sandbox\n\t\tapp_id wx1234567890abcdef\n\t\tapp_secret " + secretValue,
			[]string{"sandbox", "secret"}},
		{"no app", "signing_key " + testSigningKey,
			[]string{"app"}},
		{"app_secret without app_id", "app_secret " + secretValue,
			[]string{"app_id"}},
		{"api_base not a URL", "app_id wx1234567890abcdef\n\t\tapp_secret " + secretValue + "\n\t\tapi_base ftp:/nowhere",
			[]string{"api_base"}},
		{"bad duration", "sandbox\n\t\ttoken_ttl forever",
			[]string{"token_ttl"}},
		{"argument to a flag", "sandbox\n\t\toptional yes",
			[]string{"optional"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cf := globalOptions("") + "\nhttp://localhost:9080 {\n\twechat_auth {\n\t\t" + tt.directive + "\n\t}\n\trespond ok\n}\n"
			msg := loadError(t, cf)
			t.Logf("load error: %s", msg)
			verr := validateCaddyfile(cf)
			if verr == nil {
				t.Fatalf("caddy validate accepts the config")
			}
			for what, text := range map[string]string{"load": msg, "validate": verr.Error()} {
				for _, w := range tt.want {
					if !strings.Contains(text, w) {
						t.Errorf("%s error does not name %q:\n%s", what, w, text)
					}
				}
				if strings.Contains(text, secretValue) || strings.Contains(text, "only-20-bytes-long") {
					t.Errorf("%s error shows a secret:\n%s", what, text)
				}
			}
		})
	}
}

func TestAdaptShowsHandlerAndOnlyPlaceholders(t *testing.T) {
	// No `order` option: the directive orders itself before basic_auth.
	cf := globalOptions("") + `
http://localhost:9080 {
	basic_auth /admin/* {
		admin $2a$14$Zkx19XLiW6VYouLHR5NmfOFU0z2GTNmpkT/5qqR7hx4IjWJPDhjvG
	}
	reverse_proxy 127.0.0.1:9
	wechat_auth {
		app_id wx1234567890abcdef
		app_secret {env.WECHAT_SECRET}
		signing_key {file./run/secrets/wechat_key}
	}
}
`
	adapted, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cf), nil)
	if err != nil {
		t.Fatalf("adapt: %v (warnings %v)", err, warnings)
	}
	out := string(adapted)
	if !strings.Contains(out, `"handler":"wechat_auth"`) {
		t.Fatalf("adapted config lacks \"handler\":\"wechat_auth\":\n%s", out)
	}
	w, b, r := strings.Index(out, `"handler":"wechat_auth"`), strings.Index(out, `"handler":"authentication"`), strings.Index(out, `"handler":"reverse_proxy"`)
	if b < 0 || r < 0 || w > b || w > r {
		t.Errorf("wechat_auth is not ordered before basic_auth and reverse_proxy:\n%s", out)
	}
	for _, placeholder := range []string{"{env.WECHAT_SECRET}", "{file./run/secrets/wechat_key}"} {
		if !strings.Contains(out, placeholder) {
			t.Errorf("adapted config does not keep the placeholder %s as written:\n%s", placeholder, out)
		}
	}
}

func TestValidConfigsLoad(t *testing.T) {
	t.Setenv("WECHAT_AUTH_TEST_SECRET", testSecret)
	t.Setenv("WECHAT_AUTH_TEST_KEY", testSigningKey)
	configs := map[string]string{
		"sandbox alone":              "sandbox",
		"secrets from env":           "app_id wx1234567890abcdef\n\t\tapp_secret {env.WECHAT_AUTH_TEST_SECRET}\n\t\tsigning_key {env.WECHAT_AUTH_TEST_KEY}",
		"generated signing key":      "app_id wx1234567890abcdef\n\t\tapp_secret " + testSecret,
		"every option":               "app wx1234567890abcdef s1\n\t\tapp wx2234567890abcdef s2\n\t\troute_prefix /auth\n\t\ttoken_ttl 30m\n\t\tsession_ttl 24h\n\t\toptional\n\t\tforward_profile\n\t\theader_openid X-User\n\t\theader_unionid X-Union\n\t\theader_appid X-App\n\t\tmax_sessions 1000\n\t\ttimeout 3s\n\t\tsigning_key " + testSigningKey,
		"sandbox with a signing key": "sandbox\n\t\tsigning_key " + testSigningKey,
	}
	for name, d := range configs {
		t.Run(name, func(t *testing.T) {
			loadCaddy(t, globalOptions("")+"\nhttp://localhost:9080 {\n\twechat_auth {\n\t\t"+d+"\n\t}\n\trespond ok\n}\n")
		})
	}
}

// Caddy reads a bare JSON number as nanoseconds: "token_ttl": 7200 would
// expire every token as it is issued. Each duration refuses a value above
// zero and under its least (a second for a lifetime or an age, a
// millisecond for a timeout or a retry), naming the field and the unit.
func TestJSONDurationNumbersAreRefused(t *testing.T) {
	raw, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	// validate validates the example, its storage in a temporary folder,
	// after set changed its JSON.
	validate := func(set func(cfg map[string]any)) error {
		var cfg map[string]any
		if err := json.Unmarshal(adapted, &cfg); err != nil {
			t.Fatal(err)
		}
		cfg["storage"] = map[string]any{"module": "file_system", "root": t.TempDir()}
		set(cfg)
		b, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return validateJSON(b)
	}
	if err := validate(func(map[string]any) {}); err != nil {
		t.Fatalf("the example does not validate: %v", err)
	}
	for _, c := range []struct{ module, field string }{
		{"wechat_auth", "token_ttl"}, {"wechat_auth", "session_ttl"}, {"wechat_auth", "timeout"},
		{"wechat_push", "max_age"}, {"wechat_push", "timeout"}, {"wechat_push", "retry_for"},
		{"wechat_pay_notify", "retry_for"}, {"wechat_pay", "timeout"}, {"wechat", "timeout"},
	} {
		t.Run(c.module+" "+c.field, func(t *testing.T) {
			err := validate(func(cfg map[string]any) {
				if n := setJSONField(cfg, c.module, c.field, 7200); n == 0 {
					t.Fatalf("the example has no %s", c.module)
				}
			})
			if err == nil || !strings.Contains(err.Error(), c.module+": "+c.field+" is 7.2µs") || !strings.Contains(err.Error(), "nanoseconds") {
				t.Fatalf(`"%s": 7200 in %s gives %v, want it refused as nanoseconds`, c.field, c.module, err)
			}
		})
	}
}

// setJSONField sets field to v in the wechat app ("wechat") or in every
// handler named module, and returns how many it set.
func setJSONField(cfg map[string]any, module, field string, v any) int {
	if module == "wechat" {
		app, _ := cfg["apps"].(map[string]any)["wechat"].(map[string]any)
		if app == nil {
			return 0
		}
		app[field] = v
		return 1
	}
	n := 0
	var walk func(o any)
	walk = func(o any) {
		switch o := o.(type) {
		case map[string]any:
			if o["handler"] == module {
				o[field] = v
				n++
			}
			for _, e := range o {
				walk(e)
			}
		case []any:
			for _, e := range o {
				walk(e)
			}
		}
	}
	walk(cfg)
	return n
}
