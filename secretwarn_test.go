package wechatauth

import (
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// Every secret a handler's lines may hold is named when written as it
// is, never its value, and none is when given as a placeholder.
func TestLiteralSecretFieldsAreNamed(t *testing.T) {
	literal := DeliveryConfig{Store: "redis://:literal-password@127.0.0.1:6379/0", AssertionKey: "-----BEGIN EC PRIVATE KEY-----",
		Redis: &RedisConfig{Password: "literal-password", SentinelPassword: "literal-sentinel"}}
	got := strings.Join(fieldNames(literal.secretFields()), ",")
	if got != "store (the URL's password),password,sentinel_password,assertion_key" {
		t.Errorf("literal delivery secrets named %q", got)
	}
	placeholders := DeliveryConfig{Store: "redis://:{env.REDIS_PASSWORD}@127.0.0.1:6379/0", AssertionKey: "{file./run/secrets/assertion.pem}",
		Redis: &RedisConfig{Password: "{env.REDIS_PASSWORD}"}}
	if got := fieldNames(placeholders.secretFields()); len(got) != 0 {
		t.Errorf("placeholders named %q", got)
	}
	shared := sharedSecretFields([]App{{AppID: "wx1", AppSecret: "literal-secret"}, {AppID: "wx2", AppSecret: "{env.S2}"}},
		"memory", nil, "{env.KEY}", []string{"literal-previous-key"})
	if got := strings.Join(fieldNames(shared), ","); got != "app_secret,previous_signing_keys" {
		t.Errorf("literal shared secrets named %q", got)
	}
}

// fieldNames is what warnLiteralSecrets names of fields, read from the
// WARN it logs.
func fieldNames(fields []string) []string {
	core, logs := observer.New(zapcore.WarnLevel)
	warnLiteralSecrets(zap.New(core), "wechat_test", fields...)
	var names []string
	for _, e := range logs.All() {
		for k, v := range e.ContextMap() {
			if k == "fields" {
				for _, n := range v.([]any) {
					names = append(names, n.(string))
				}
			}
		}
	}
	return names
}
