package wechatauth

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
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

// Modes of a Redis connection.
const (
	redisSingle   = "single"
	redisSentinel = "sentinel"
	redisCluster  = "cluster"
)

// redisConn says how to reach Redis: go-redis's options with this store's
// time limits, a description for errors and logs that holds no password,
// and an id that tells connections apart in the usage pool.
type redisConn struct {
	mode      string
	where     string // "redis at 10.0.0.1:6379", never a password
	id        string // a hash of every option, passwords included
	newClient func() redis.UniversalClient
}

// limitOptions sets go-redis's time limits: its defaults (5 s dial with 5
// attempts, 3 retries, 3 s reads) would hang a login for many seconds when
// Redis does not answer. One retry, on a fresh connection, since a pooled
// one may predate a Redis restart or a failover.
func limitOptions(o *redis.Options) {
	o.DialTimeout, o.DialerRetries = redisIOTimeout, 1
	o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = redisIOTimeout, redisIOTimeout, redisIOTimeout
	o.MaxRetries = 1
	o.ContextTimeoutEnabled = true
	o.DisableIdentity = true
}

// limitUniversal is limitOptions for the universal client; Sentinel
// connections take the same limits.
func limitUniversal(o *redis.UniversalOptions) {
	o.DialTimeout, o.DialerRetries = redisIOTimeout, 1
	o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = redisIOTimeout, redisIOTimeout, redisIOTimeout
	o.MaxRetries = 1
	o.ContextTimeoutEnabled = true
	o.DisableIdentity = true
}

// redisConnFromURL parses a store URL. Errors never show the URL's
// password.
func redisConnFromURL(rawURL string) (*redisConn, error) {
	if !strings.HasPrefix(rawURL, "redis://") && !strings.HasPrefix(rawURL, "rediss://") && !strings.HasPrefix(rawURL, "unix://") {
		return nil, fmt.Errorf("%s is not a redis://, rediss:// or unix:// URL", redactURL(rawURL))
	}
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%s is not a valid Redis URL (see https://pkg.go.dev/github.com/redis/go-redis/v9#ParseURL)", redactURL(rawURL))
	}
	limitOptions(opts)
	return &redisConn{
		mode:      redisSingle,
		where:     "redis at " + opts.Addr,
		id:        hashID("url", rawURL),
		newClient: func() redis.UniversalClient { return redis.NewClient(opts) },
	}, nil
}

// redactURL shows a Redis URL without its password.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the store URL"
	}
	return strconv.Quote(u.Redacted())
}

func hashID(kind string, v any) string {
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(append([]byte(kind+"\x00"), b...))
	return kind + ":" + hex.EncodeToString(sum[:])
}

// conn resolves the placeholders of c, checks it, and says how to reach
// the Redis it describes. Errors name the field at fault, never a
// password.
func (c RedisConfig) conn(repl *caddy.Replacer) (*redisConn, error) {
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
		for _, one := range strings.FieldsFunc(resolve("addrs", a), func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
			addrs = append(addrs, one)
		}
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
	if err := r.check(); err != nil {
		return nil, err
	}

	o := &redis.UniversalOptions{
		Addrs:            r.Addrs,
		MasterName:       r.MasterName,
		Username:         r.Username,
		Password:         r.Password,
		SentinelUsername: r.SentinelUsername,
		SentinelPassword: r.SentinelPassword,
		DB:               r.DB,
	}
	if r.TLS {
		// No ServerName: each connection verifies the host of the address
		// it dials, so every Cluster node and Sentinel is checked.
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	limitUniversal(o)
	conn := &redisConn{id: hashID("block", r)}
	list := strings.Join(r.Addrs, ", ")
	switch {
	case r.MasterName != "":
		conn.mode, conn.where = redisSentinel, fmt.Sprintf("redis primary %q of the Sentinels at %s", r.MasterName, list)
		conn.newClient = func() redis.UniversalClient { return redis.NewFailoverClient(o.Failover()) }
	case len(r.Addrs) > 1 || r.Cluster:
		conn.mode, conn.where = redisCluster, "Redis Cluster at "+list
		conn.newClient = func() redis.UniversalClient {
			co := o.Cluster()
			// go-redis reloads its slot map every 60 s by default (and on
			// MOVED): the store also asks for a reload on every failure,
			// and this bounds how stale the map gets otherwise.
			co.ClusterStateReloadInterval = redisClusterRefresh
			return redis.NewClusterClient(co)
		}
	default:
		conn.mode, conn.where = redisSingle, "redis at "+list
		conn.newClient = func() redis.UniversalClient { return redis.NewClient(o.Simple()) }
	}
	return conn, nil
}

// check refuses combinations go-redis would quietly misread.
func (r RedisConfig) check() error {
	if len(r.Addrs) == 0 {
		return errors.New("addrs is empty: list the Redis server, the Sentinels (with master_name), or the Cluster's nodes, as host:port")
	}
	for _, a := range r.Addrs {
		host, port, err := net.SplitHostPort(a)
		n, perr := strconv.Atoi(port)
		if err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			return fmt.Errorf("addrs: %q is not host:port", a)
		}
	}
	switch {
	case r.MasterName != "" && r.Cluster:
		return errors.New("master_name and cluster exclude each other: master_name is for Sentinels, cluster for a Redis Cluster")
	case r.MasterName == "" && r.SentinelPassword != "":
		return errors.New("sentinel_password is set without master_name: it is the Sentinels' password, and addrs are Sentinels only with master_name (Redis's own password is password)")
	case r.MasterName == "" && r.SentinelUsername != "":
		return errors.New("sentinel_username is set without master_name: addrs are Sentinels only with master_name (Redis's own user is username)")
	case r.DB < 0:
		return fmt.Errorf("db must be 0 or more, not %d", r.DB)
	case r.DB != 0 && r.MasterName == "" && (len(r.Addrs) > 1 || r.Cluster):
		return fmt.Errorf("db %d with a Redis Cluster (several addrs, or cluster): a Cluster has only db 0; for Sentinels set master_name", r.DB)
	}
	return nil
}

// redisClusterRefresh bounds the age of a Cluster client's slot map.
const redisClusterRefresh = 5 * time.Second
