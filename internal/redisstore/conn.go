package redisstore

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

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Modes of a Redis connection.
const (
	Single   = "single"
	Sentinel = "sentinel"
	Cluster  = "cluster"
)

// Options are the parts of a Redis given one by one (the root's RedisConfig
// converts to it, its json tags too: they make the connection's id).
type Options struct {
	Addrs []string `json:"addrs,omitempty"`

	MasterName string `json:"master_name,omitempty"`

	Cluster bool `json:"cluster,omitempty"`

	Username string `json:"username,omitempty"`

	Password string `json:"password,omitempty"`

	SentinelUsername string `json:"sentinel_username,omitempty"`

	SentinelPassword string `json:"sentinel_password,omitempty"`

	DB int `json:"db,omitempty"`

	TLS bool `json:"tls,omitempty"`
}

// Dial checks o and says how to reach the Redis it describes. Errors name
// the field at fault, never a password.
func Dial(r Options) (*Conn, error) {
	if err := r.Check(); err != nil {
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
	LimitUniversal(o)
	conn := &Conn{ID: HashID("block", r)}
	list := strings.Join(r.Addrs, ", ")
	switch {
	case r.MasterName != "":
		conn.Mode, conn.Where = Sentinel, fmt.Sprintf("redis primary %q of the Sentinels at %s", r.MasterName, list)
		conn.NewClient = func() redis.UniversalClient { return redis.NewFailoverClient(o.Failover()) }
		conn.newPrimaryAsker = func() *primaryAsker { return newPrimaryAsker(o) }
	case len(r.Addrs) > 1 || r.Cluster:
		conn.Mode, conn.Where = Cluster, "Redis Cluster at "+list
		conn.NewClient = func() redis.UniversalClient {
			co := o.Cluster()
			// go-redis reloads its slot map every 60 s by default (and on
			// MOVED): the store also asks for a reload on every failure,
			// and this bounds how stale the map gets otherwise.
			co.ClusterStateReloadInterval = ClusterRefresh
			return redis.NewClusterClient(co)
		}
	default:
		conn.Mode, conn.Where = Single, "redis at "+list
		conn.NewClient = func() redis.UniversalClient { return redis.NewClient(o.Simple()) }
	}
	return conn, nil
}

// Check refuses what Dial cannot use: no address, an address that is not
// host:port, and combinations go-redis would quietly misread. Errors name
// the field at fault, never a password.
func (r Options) Check() error {
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

// Conn says how to reach Redis: go-redis's options with this store's
// time limits, a description for errors and logs that holds no password,
// and an id that tells connections apart in the usage pool.
type Conn struct {
	Mode      string
	Where     string // "redis at 10.0.0.1:6379", never a password
	ID        string // a hash of every option, passwords included
	NewClient func() redis.UniversalClient

	newPrimaryAsker func() *primaryAsker // over Sentinels only
}

// LimitOptions sets go-redis's time limits: its defaults (5 s dial with 5
// attempts, 3 retries, 3 s reads) would hang a login for many seconds when
// Redis does not answer. One retry, on a fresh connection, since a pooled
// one may predate a Redis restart or a failover.
func LimitOptions(o *redis.Options) {
	o.DialTimeout, o.DialerRetries = IOTimeout, 1
	o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = IOTimeout, IOTimeout, IOTimeout
	o.MaxRetries = 1
	o.ContextTimeoutEnabled = true
	o.DisableIdentity = true
	o.MaintNotificationsConfig = noMaintNotifications()
}

// noMaintNotifications turns off go-redis's CLIENT MAINT_NOTIFICATIONS
// on every new connection: Redis before 8 answers it with an error, and
// the documented ACL, which must also work there, refuses it, each
// failure counted in Redis's error stats and ACL log. Those notifications
// announce a managed service's planned maintenance; the store copes with
// a server going away as it does with any failover.
func noMaintNotifications() *maintnotifications.Config {
	return &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
}

// LimitUniversal is LimitOptions for the universal client; Sentinel
// connections take the same limits.
func LimitUniversal(o *redis.UniversalOptions) {
	o.DialTimeout, o.DialerRetries = IOTimeout, 1
	o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = IOTimeout, IOTimeout, IOTimeout
	o.MaxRetries = 1
	o.ContextTimeoutEnabled = true
	o.DisableIdentity = true
	o.MaintNotificationsConfig = noMaintNotifications()
}

// ConnFromURL parses a store URL. Errors never show the URL's
// password.
func ConnFromURL(rawURL string) (*Conn, error) {
	if !strings.HasPrefix(rawURL, "redis://") && !strings.HasPrefix(rawURL, "rediss://") && !strings.HasPrefix(rawURL, "unix://") {
		return nil, fmt.Errorf("%s is not a redis://, rediss:// or unix:// URL", RedactURL(rawURL))
	}
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%s is not a valid Redis URL (see https://pkg.go.dev/github.com/redis/go-redis/v9#ParseURL)", RedactURL(rawURL))
	}
	LimitOptions(opts)
	return &Conn{
		Mode:      Single,
		Where:     "redis at " + opts.Addr,
		ID:        HashID("url", rawURL),
		NewClient: func() redis.UniversalClient { return redis.NewClient(opts) },
	}, nil
}

// RedactURL shows a Redis URL without its password.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the store URL"
	}
	return strconv.Quote(u.Redacted())
}

// HashID is a Conn's ID: a hash of kind and every option, passwords
// included, so that two configs share a pooled client only when nothing
// of it differs. It is a key in the usage pools, never shown.
func HashID(kind string, v any) string {
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(append([]byte(kind+"\x00"), b...))
	return kind + ":" + hex.EncodeToString(sum[:])
}

// ClusterRefresh bounds the age of a Cluster client's slot map.
const ClusterRefresh = 5 * time.Second
