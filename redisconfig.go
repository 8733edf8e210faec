package wechatauth

import (
	"fmt"
	"strings"

	"github.com/caddy-wechat/wechatauth/internal/redisstore"
	"github.com/caddyserver/caddy/v2"
)

// RedisConfig is the Redis of a shared session store given by its parts
// (in the Caddyfile, `store redis { … }`), for a Redis behind Sentinels or
// a Redis Cluster, or a single server. It mirrors go-redis's
// UniversalOptions: several addrs make a Cluster, master_name makes them
// Sentinels, one address alone is a single server.
type RedisConfig struct {
	// Where Redis is, as host:port. One address: a single server (or, with
	// cluster, one node of a Cluster). Several: nodes of a Redis Cluster
	// (any of them; the others are found). With master_name: the Sentinels.
	// A placeholder may hold several addresses, separated by spaces or
	// commas.
	Addrs []string `json:"addrs,omitempty"`

	// The name the Sentinels know the primary by (sentinel monitor
	// <name> …). When set, addrs are Sentinels, and the store follows
	// whichever server they name the primary.
	MasterName string `json:"master_name,omitempty"`

	// A single address is a node of a Redis Cluster, such as a managed
	// service's configuration endpoint. Not with master_name.
	Cluster bool `json:"cluster,omitempty"`

	// The ACL user to log in as (AUTH <username> <password>). Default:
	// Redis's "default" user.
	Username string `json:"username,omitempty"`

	// The Redis password. Write a placeholder such as
	// {env.REDIS_PASSWORD}; it is resolved when the config loads and never
	// shown in an error or a log.
	Password string `json:"password,omitempty"`

	// The ACL user on the Sentinels, when they require one. Only with
	// master_name.
	SentinelUsername string `json:"sentinel_username,omitempty"`

	// The Sentinels' password (their requirepass), when they have one;
	// Redis's own password is password. Only with master_name.
	SentinelPassword string `json:"sentinel_password,omitempty"`

	// The database number. Default: 0. A Redis Cluster has only 0.
	DB int `json:"db,omitempty"`

	// Connect with TLS (to Redis, and to the Sentinels), verifying the
	// server's certificate against the system's trusted roots and its
	// address's host name. SSL_CERT_FILE or SSL_CERT_DIR add a private CA.
	TLS bool `json:"tls,omitempty"`
}

// conn resolves the placeholders of c, checks it, and says how to reach
// the Redis it describes. Errors name the field at fault, never a
// password.
func (c RedisConfig) conn(repl *caddy.Replacer) (*redisstore.Conn, error) {
	var err error
	resolve := func(name, v string) string {
		if v == "" || err != nil {
			return v
		}
		out := strings.TrimSpace(repl.ReplaceKnown(v, ""))
		if out == "" {
			err = fmt.Errorf("%s resolves to nothing: fix its placeholder, or remove it", name)
		}
		return out
	}
	var addrs []string
	for _, a := range c.Addrs {
		addrs = append(addrs, strings.FieldsFunc(resolve("addrs", a), func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })...)
	}
	r := RedisConfig{
		Addrs:            addrs,
		MasterName:       resolve("master_name", c.MasterName),
		Cluster:          c.Cluster,
		Username:         resolve("username", c.Username),
		Password:         resolve("password", c.Password),
		SentinelUsername: resolve("sentinel_username", c.SentinelUsername),
		SentinelPassword: resolve("sentinel_password", c.SentinelPassword),
		DB:               c.DB,
		TLS:              c.TLS,
	}
	if err != nil {
		return nil, err
	}
	return redisstore.Dial(redisstore.Options(r))
}
