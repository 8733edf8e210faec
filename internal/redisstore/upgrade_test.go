package redisstore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-wechat/wechatauth/internal/keyring"
	"github.com/caddy-wechat/wechatauth/internal/metrics"
	"github.com/caddy-wechat/wechatauth/internal/redistest"
	"github.com/caddy-wechat/wechatauth/internal/session"
)

// oldLayoutPrefix and oldLayoutSeal write what the version before key
// rotation wrote: keys under wechat_auth:<HKDF(signing key)>:, the
// session_key sealed with AES-GCM under HKDF(signing key). They are
// written out here rather than calling this version's code, so a change to
// the layout this version reads shows.
func oldLayoutPrefix(key []byte) string {
	ns, _ := hkdf.Key(sha256.New, key, nil, "wechat_auth redis namespace v1", 6)
	return "wechat_auth:" + hex.EncodeToString(ns) + ":"
}

func oldLayoutSeal(t *testing.T, key []byte, s *session.Session, expires time.Time) []byte {
	t.Helper()
	encKey, _ := hkdf.Key(sha256.New, key, nil, "wechat_auth session_key v1", 32)
	block, _ := aes.NewCipher(encKey)
	aead, _ := cipher.NewGCM(block)
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	aad := []byte("wechat_auth session v1\x00" + s.SID + "\x00" + s.AppID + "\x00" + s.OpenID + "\x00" + s.UnionID)
	b, _ := json.Marshal(map[string]any{
		"appid": s.AppID, "openid": s.OpenID, "unionid": s.UnionID,
		"created": s.Created.UnixMilli(), "expires": expires.UnixMilli(),
		"sealed_key": aead.Seal(nonce, nonce, []byte(s.SessionKey), aad),
	})
	return b
}

func rdsStoreRing(t *testing.T, srv *rdsServer, keys ...[]byte) *Store {
	t.Helper()
	metrics.Init(nil)
	conn, err := ConnFromURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	st, err := New(conn, keyring.New(keys...), 1000, zap.NewNop())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { st.Destruct() })
	return st
}

func wantSession(t *testing.T, st *Store, want *session.Session, when string) {
	t.Helper()
	st.cache.Clear()
	got, err := st.Get(context.Background(), want.SID)
	if err != nil {
		t.Fatalf("%s: the session stored by the earlier version is gone: %v", when, err)
	}
	if got.SessionKey != want.SessionKey || got.OpenID != want.OpenID {
		t.Fatalf("%s: the session does not open to what was stored", when)
	}
}

// An upgrade from the version before key rotation logs nobody out and
// forgets no logout, and the sessions survive a rotation afterwards.
func TestRedisUpgradeKeepsSessionsAndRevocationsOfTheOldLayout(t *testing.T) {
	srv := rdsStart(t)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	old := rdsKeyA
	prefix := oldLayoutPrefix(old)
	s := rdsVectorSession()
	if err := c.Set(ctx, prefix+"session:"+s.SID, oldLayoutSeal(t, old, s, time.Now().Add(time.Hour)), time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	revoked := session.NewID()
	c.ZAdd(ctx, prefix+"revoked", redis.Z{Score: float64(time.Now().Add(time.Hour).UnixMilli()), Member: revoked})

	// The upgraded instance, same key.
	up := rdsStoreRing(t, srv, old)
	wantSession(t, up, s, "after the upgrade")
	if !up.Revoked(revoked, time.Now()) {
		t.Fatal("a logout made before the upgrade is forgotten")
	}
	// An instance not yet upgraded publishes a logout the old way, once
	// the upgraded one listens on the old channel.
	if !rdsEventually(2*time.Second, func() bool {
		n, err := c.PubSubNumSub(ctx, prefix+"revoked").Result()
		return err == nil && n[prefix+"revoked"] > 0
	}) {
		t.Fatal("the upgraded instance does not listen on the earlier version's channel")
	}
	late := session.NewID()
	c.Publish(ctx, prefix+"revoked", late+" "+strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10))
	if !rdsEventually(time.Second, func() bool { return up.Revoked(late, time.Now()) }) {
		t.Error("a logout published by an instance of the earlier version is not heard within 1 s")
	}

	// Rotation: signing_key NEW OLD, then signing_key NEW.
	both := rdsStoreRing(t, srv, rdsKeyB, old)
	if both.sessionPrefix != up.sessionPrefix {
		t.Fatal("adding a signing key moved the store to another namespace")
	}
	wantSession(t, both, s, "with signing_key NEW OLD")
	onlyNew := rdsStoreRing(t, srv, rdsKeyB)
	if onlyNew.sessionPrefix != up.sessionPrefix {
		t.Fatal("dropping the old signing key moved the store to another namespace")
	}
	wantSession(t, onlyNew, s, "with signing_key NEW")
	if !onlyNew.Revoked(revoked, time.Now()) {
		t.Error("a logout made before the upgrade is forgotten once the old key is dropped")
	}

	// Another deployment, another key: its own data.
	other := rdsStoreRing(t, srv, []byte("a-third-signing-key-of-another-deployment-00"))
	if other.sessionPrefix == up.sessionPrefix {
		t.Error("deployments with different keys share a namespace")
	}
	if _, err := other.Get(ctx, s.SID); err == nil {
		t.Error("another deployment reads this one's session")
	}
}

// Redis keeps no signing key and no data key in the clear.
func TestRedisDataKeyIsWrappedUnderEachSigningKey(t *testing.T) {
	srv := rdsStart(t)
	st := rdsStoreRing(t, srv, rdsKeyB, rdsKeyA)
	c := srv.Client()
	defer c.Close()
	fields, err := c.HGetAll(context.Background(), dataKeysKey).Result()
	if err != nil || len(fields) != 2 {
		t.Fatalf("want the data key wrapped under both keys, got %d fields (%v)", len(fields), err)
	}
	dump := string(redistest.Dump(t, c))
	for _, secret := range [][]byte{rdsKeyA, rdsKeyB, st.dataKey.Key} {
		if containsAny(dump, secret) {
			t.Error("Redis holds a key in the clear")
		}
	}
}

func containsAny(dump string, secret []byte) bool {
	for _, enc := range []string{string(secret), hex.EncodeToString(secret), base64.StdEncoding.EncodeToString(secret)} {
		if strings.Contains(dump, enc) {
			return true
		}
	}
	return false
}

// TestNewDeploymentDataKeyIsLogged checks that an instance says when it
// made a data key rather than finding one: on an instance meant to share
// another's sessions, that line is how an operator learns the two hold no
// signing key in common.
func TestNewDeploymentDataKeyIsLogged(t *testing.T) {
	srv := rdsStart(t)
	metrics.Init(nil)
	start := func(key []byte) int {
		t.Helper()
		conn, err := ConnFromURL(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		core, logs := observer.New(zapcore.InfoLevel)
		st, err := New(conn, keyring.New(key), 1000, zap.New(core))
		if err != nil {
			t.Fatal(err)
		}
		st.Destruct()
		made := logs.FilterMessageSnippet("made the data key of a new deployment").All()
		for _, e := range made {
			if kids, _ := e.ContextMap()["kids"].([]any); len(kids) != 1 || kids[0] != keyring.KeyID(key) {
				t.Errorf("logged kids %v, want [%s]", e.ContextMap()["kids"], keyring.KeyID(key))
			}
		}
		return len(made)
	}
	if n := start(rdsKeyA); n != 1 {
		t.Errorf("first start with key A: %d lines, want 1", n)
	}
	if n := start(rdsKeyA); n != 0 {
		t.Errorf("second start with key A found the data key, yet logged %d lines", n)
	}
	if n := start(rdsKeyB); n != 1 {
		t.Errorf("key B shares no key with A: %d lines, want 1", n)
	}
}

// TestLogoutsReachInstancesNotYetUpgraded checks the other half of a
// rolling upgrade: an instance of the version before key rotation, still
// running, hears a logout made on an upgraded one, on its own channel and
// in its own format.
func TestLogoutsReachInstancesNotYetUpgraded(t *testing.T) {
	srv := rdsStart(t)
	ctx := context.Background()
	c := srv.Client()
	defer c.Close()
	old := c.Subscribe(ctx, oldLayoutPrefix(rdsKeyA)+"revoked") // as the old version subscribes
	defer old.Close()
	if _, err := old.Receive(ctx); err != nil { // the subscription's confirmation
		t.Fatal(err)
	}
	up := rdsStore(t, srv, rdsKeyA)
	sid := session.NewID()
	until := time.Now().Add(time.Hour)
	if err := up.Revoke(ctx, sid, until); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	msg, err := old.ReceiveMessage(rctx)
	if err != nil {
		t.Fatalf("the old layout's channel heard nothing within 1 s: %v", err)
	}
	// The old version splits "<sid> <until Unix ms>".
	gotSID, ms, _ := strings.Cut(msg.Payload, " ")
	if n, err := strconv.ParseInt(ms, 10, 64); gotSID != sid || err != nil || n != until.UnixMilli() {
		t.Fatalf("the old layout's channel heard %q, want %q", msg.Payload, sid+" "+strconv.FormatInt(until.UnixMilli(), 10))
	}
}
