package wechatauth

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/redisstore"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/redis/go-redis/v9"
)

func TestCaddyfileStoreRedisBlockFillsTheRedisObject(t *testing.T) {
	for _, tc := range []struct{ name, input, want string }{
		{"cluster", `wechat_auth {
			store redis {
				addrs 10.0.0.1:6379 10.0.0.2:6379 10.0.0.3:6379
				username app
				password {env.REDIS_PASSWORD}
				tls
			}
		}`, `{"redis":{"addrs":["10.0.0.1:6379","10.0.0.2:6379","10.0.0.3:6379"],"username":"app","password":"{env.REDIS_PASSWORD}","tls":true}}`},
		{"sentinel", `wechat_auth {
			store redis {
				addrs s1:26379 s2:26379 s3:26379
				master_name mymaster
				sentinel_username watcher
				sentinel_password {env.SENTINEL_PASSWORD}
				db 2
			}
		}`, `{"redis":{"addrs":["s1:26379","s2:26379","s3:26379"],"master_name":"mymaster","sentinel_username":"watcher","sentinel_password":"{env.SENTINEL_PASSWORD}","db":2}}`},
		{"one cluster endpoint", `wechat_auth {
			store redis {
				addrs clustercfg.example.cache.amazonaws.com:6379
				cluster
			}
		}`, `{"redis":{"addrs":["clustercfg.example.cache.amazonaws.com:6379"],"cluster":true}}`},
		{"URL and block both (refused at provision)", `wechat_auth {
			store redis redis://r:6379 {
				addrs r:6379
			}
		}`, `{"store":"redis://r:6379","redis":{"addrs":["r:6379"]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseBlock(t, tc.input)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(got)
			var want map[string]any
			json.Unmarshal([]byte(tc.want), &want)
			wb, _ := json.Marshal(want)
			if string(b) != string(wb) {
				t.Errorf("JSON %s, want %s", b, wb)
			}
		})
	}
}

func TestCaddyfileStoreRedisBlockSyntaxErrors(t *testing.T) {
	for _, tc := range []struct{ name, input, want string }{
		{"unknown subdirective", "store redis {\n addrs a:1\n sentinels b:2\n}", `unknown subdirective "sentinels"`},
		{"no block, no URL", "store redis", "store redis takes a URL or a block"},
		{"empty block", "store redis {\n}", "store redis takes a URL or a block"},
		{"addrs without value", "store redis {\n addrs\n}", "addrs needs one or more host:port"},
		{"twice", "store redis {\n password a\n password b\n}", "password is given twice"},
		{"db not a number", "store redis {\n addrs a:1\n db two\n}", `db "two" is not a number`},
		{"tls with an argument", "store redis {\n addrs a:1\n tls yes\n}", "tls takes no argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("wechat_auth {\n" + tc.input + "\n}"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// The same checks hold for JSON and the Caddyfile: they run at provision,
// on the resolved values.
func TestRedisConfigRefusesBadCombinations(t *testing.T) {
	t.Setenv("WXTEST_REDIS_PASSWORD", "hunter2-secret")
	t.Setenv("WXTEST_EMPTY", "")
	for _, tc := range []struct {
		name string
		c    RedisConfig
		want string
	}{
		{"no addrs", RedisConfig{Password: "hunter2-secret"}, "addrs is empty"},
		{"addrs resolve to nothing", RedisConfig{Addrs: []string{"{env.WXTEST_EMPTY}"}}, "addrs resolves to nothing"},
		{"not host:port", RedisConfig{Addrs: []string{"10.0.0.1"}}, `"10.0.0.1" is not host:port`},
		{"bad port", RedisConfig{Addrs: []string{"r:0"}}, `"r:0" is not host:port`},
		{"sentinel_password without master_name", RedisConfig{Addrs: []string{"a:1"}, SentinelPassword: "{env.WXTEST_REDIS_PASSWORD}"}, "sentinel_password is set without master_name"},
		{"sentinel_username without master_name", RedisConfig{Addrs: []string{"a:1"}, SentinelUsername: "u"}, "sentinel_username is set without master_name"},
		{"db on a cluster", RedisConfig{Addrs: []string{"a:1", "b:1"}, DB: 3, Password: "hunter2-secret"}, "db 3 with a Redis Cluster"},
		{"db on a cluster endpoint", RedisConfig{Addrs: []string{"a:1"}, Cluster: true, DB: 1}, "a Cluster has only db 0"},
		{"negative db", RedisConfig{Addrs: []string{"a:1"}, DB: -1}, "db must be 0 or more"},
		{"master_name and cluster", RedisConfig{Addrs: []string{"a:1"}, MasterName: "m", Cluster: true}, "master_name and cluster exclude each other"},
		{"password resolves to nothing", RedisConfig{Addrs: []string{"a:1"}, Password: "{env.WXTEST_EMPTY}"}, "password resolves to nothing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.conn(caddy.NewReplacer())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

func TestRedisConfigPicksTheModeAndLimitsEveryClient(t *testing.T) {
	t.Setenv("WXTEST_NODES", "10.0.0.1:6379, 10.0.0.2:6379 10.0.0.3:6379")
	for _, tc := range []struct {
		name string
		c    RedisConfig
		mode string
	}{
		{"one addr", RedisConfig{Addrs: []string{"r:6379"}, DB: 2}, redisstore.Single},
		{"master_name", RedisConfig{Addrs: []string{"s1:26379", "s2:26379"}, MasterName: "m", DB: 1}, redisstore.Sentinel},
		{"several addrs", RedisConfig{Addrs: []string{"a:1", "b:1"}}, redisstore.Cluster},
		{"several addrs in one placeholder", RedisConfig{Addrs: []string{"{env.WXTEST_NODES}"}}, redisstore.Cluster},
		{"one addr with cluster", RedisConfig{Addrs: []string{"cfg:6379"}, Cluster: true}, redisstore.Cluster},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := tc.c.conn(caddy.NewReplacer())
			if err != nil {
				t.Fatal(err)
			}
			if conn.Mode != tc.mode {
				t.Fatalf("mode %s, want %s", conn.Mode, tc.mode)
			}
			client := conn.NewClient()
			defer client.Close()
			var dial, read, write, pool time.Duration
			var retries int
			switch c := client.(type) {
			case *redis.ClusterClient:
				o := c.Options()
				if len(o.Addrs) != 3 && len(o.Addrs) != len(tc.c.Addrs) {
					t.Errorf("cluster seeds %v", o.Addrs)
				}
				if o.ClusterStateReloadInterval > 10*time.Second {
					t.Errorf("the slot map may be %v old", o.ClusterStateReloadInterval)
				}
				dial, read, write, pool, retries = o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout, o.MaxRetries
			case *redis.Client:
				o := c.Options()
				if o.DB != tc.c.DB {
					t.Errorf("db %d, want %d", o.DB, tc.c.DB)
				}
				dial, read, write, pool, retries = o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout, o.MaxRetries
			default:
				t.Fatalf("client %T", client)
			}
			for _, d := range []time.Duration{dial, read, write, pool} {
				if d <= 0 || d > time.Second {
					t.Errorf("a time limit is %v (dial %v read %v write %v pool %v)", d, dial, read, write, pool)
				}
			}
			if retries > 1 {
				t.Errorf("%d retries", retries)
			}
		})
	}
}

// The store's pool key changes with the password, so a reload with a new
// password connects anew, stays with the same block, and shows no
// password.
func TestRedisConfigIDFollowsEveryOptionAndHidesThePassword(t *testing.T) {
	a, _ := RedisConfig{Addrs: []string{"a:1"}, Password: "hunter2-one"}.conn(caddy.NewReplacer())
	b, _ := RedisConfig{Addrs: []string{"a:1"}, Password: "hunter2-two"}.conn(caddy.NewReplacer())
	if a.ID == b.ID {
		t.Error("two passwords give one connection id")
	}
	// The same block again (a reload) keeps the running store.
	if again, _ := (RedisConfig{Addrs: []string{"a:1"}, Password: "hunter2-one"}).conn(caddy.NewReplacer()); again.ID != a.ID {
		t.Error("the same block gives another connection id: a reload would reconnect and need Redis")
	}
	for _, s := range []string{a.ID, a.Where, b.ID, b.Where} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("%q shows the password", s)
		}
	}
}
