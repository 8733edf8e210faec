package caddytest

// Acceptance of issue 14, signing keys:
//   - memory store and Redis: a token of the old key works after
//     `signing_key NEW OLD`; a refresh gives a token of NEW (its kid); after
//     `signing_key NEW` that token still works and its session decrypts;
//     the old token is refused;
//   - a token naming an unknown kid, or the kid of another key, is refused;
//   - a session and a revocation stored in Redis by the version before key
//     rotation (with a token of that version, which has no kid) survive the
//     upgrade;
//   - 50 concurrent refreshes of one token all answer 200 and keep the
//     session.

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

const rotNewKey = "the-new-signing-key-for-rotation-tests-4b7e1d"

// rotKID is the kid a key's tokens carry: 12 characters of base64url of
// HMAC-SHA256(key, "wechat_auth kid v1").
func rotKID(key string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte("wechat_auth kid v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:9])
}

func rotKIDOf(t *testing.T, token string) string {
	t.Helper()
	p, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := p.Header["kid"].(string)
	return kid
}

// rotRefresh refreshes token at base and returns the new one.
func rotRefresh(t *testing.T, base, token string) string {
	t.Helper()
	r := send(t, http.MethodPost, base+"/wx/refresh", bearer(token), "")
	wantStatus(t, r, http.StatusOK)
	return r.Object(t)["token"].(string)
}

// rotReload loads st's config with extra directive lines.
func rotReload(t *testing.T, st *stack, directive string) {
	t.Helper()
	d := "\t\tapp_id " + testAppID + "\n\t\tapp_secret " + testSecret + "\n\t\tapi_base " + st.WeChatURL +
		"\n\t\ttimeout " + testTimeout.String() + "\n" + directive
	loadCaddy(t, globalOptions("")+wechatSite(siteBase, d, st.Upstream.Addr, ""))
}

func rotStepThrough(t *testing.T, st *stack, store string) {
	rdsVectorCode(st.WeChat, "rot-code")
	old := loginAt(t, siteBase, map[string]string{"code": "rot-code"}).Token
	if got := rotKIDOf(t, old); got != rotKID(testSigningKey) {
		t.Fatalf("the token's kid is %q, want its key's %q", got, rotKID(testSigningKey))
	}

	rotReload(t, st, "\t\tsigning_key "+rotNewKey+" "+testSigningKey+"\n"+store)
	rdsWantProxied(t, siteBase, old)
	fresh := rotRefresh(t, siteBase, old)
	if got := rotKIDOf(t, fresh); got != rotKID(rotNewKey) {
		t.Fatalf("a refresh after signing_key NEW OLD gives kid %q, want the new key's %q", got, rotKID(rotNewKey))
	}
	rdsWantVectorDecrypts(t, siteBase, fresh)

	rotReload(t, st, "\t\tsigning_key "+rotNewKey+"\n"+store)
	rdsWantProxied(t, siteBase, fresh)
	rdsWantVectorDecrypts(t, siteBase, fresh)
	wantError(t, get(t, st.Base+"/api/orders", old), http.StatusUnauthorized, "invalid_token")

	now := time.Now()
	claims := jwt.MapClaims{"iss": "wechat_auth", "sub": wechattest.UserInfoVector.OpenID, "aud": testAppID,
		"sid": "c2lkLW9mLWEtZm9yZ2VkLXRva2Vu", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for name, kid := range map[string]string{"unknown kid": "AAAAAAAAAAAA", "kid of another key": rotKID(testSigningKey)} {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
		tok.Header["kid"] = kid
		s, err := tok.SignedString([]byte(rotNewKey))
		if err != nil {
			t.Fatal(err)
		}
		r := get(t, st.Base+"/api/orders", s)
		if r.Status != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, r.Status)
		}
	}
}

func TestRotationBySigningKeyListMemory(t *testing.T) {
	st := startStack(t, stackConfig{})
	rotStepThrough(t, st, "")
}

func TestRotationBySigningKeyListRedis(t *testing.T) {
	srv := rdsStart(t)
	st := startStack(t, stackConfig{Directive: "\t\tstore redis " + srv.URL + "\n"})
	rotStepThrough(t, st, "\t\tstore redis "+srv.URL+"\n")
}

// TestUpgradeKeepsRedisSessionsAndRevocations writes what the version
// before key rotation kept in Redis for a session and a logout (its layout
// is spelled out here), with that version's tokens (no kid), and starts
// this version on it.
func TestUpgradeKeepsRedisSessionsAndRevocations(t *testing.T) {
	srv := rdsStart(t)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	ns, _ := hkdf.Key(sha256.New, []byte(testSigningKey), nil, "wechat_auth redis namespace v1", 6)
	prefix := "wechat_auth:" + hex.EncodeToString(ns) + ":"
	encKey, _ := hkdf.Key(sha256.New, []byte(testSigningKey), nil, "wechat_auth session_key v1", 32)
	block, _ := aes.NewCipher(encKey)
	aead, _ := cipher.NewGCM(block)
	v := wechattest.UserInfoVector
	now := time.Now()
	oldToken := func(sid string) string {
		return forgeToken(t, jwt.SigningMethodHS256, []byte(testSigningKey), jwt.MapClaims{
			"iss": "wechat_auth", "sub": v.OpenID, "aud": testAppID, "sid": sid, "unionid": v.UnionID,
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	}
	for _, sid := range []string{"c2Vzc2lvbi1rZXB0LWJ5LXYx", "c2Vzc2lvbi1sb2dnZWQtb3V0"} {
		nonce := make([]byte, aead.NonceSize())
		rand.Read(nonce)
		aad := []byte("wechat_auth session v1\x00" + sid + "\x00" + testAppID + "\x00" + v.OpenID + "\x00" + v.UnionID)
		rec, _ := json.Marshal(map[string]any{"appid": testAppID, "openid": v.OpenID, "unionid": v.UnionID,
			"created": now.UnixMilli(), "expires": now.Add(72 * time.Hour).UnixMilli(),
			"sealed_key": aead.Seal(nonce, nonce, []byte(v.SessionKey), aad)})
		c.Set(ctx, prefix+"session:"+sid, rec, 72*time.Hour)
	}
	c.ZAdd(ctx, prefix+"revoked", redis.Z{Score: float64(now.Add(2 * time.Hour).UnixMilli()), Member: "c2Vzc2lvbi1sb2dnZWQtb3V0"})
	kept, gone := oldToken("c2Vzc2lvbi1rZXB0LWJ5LXYx"), oldToken("c2Vzc2lvbi1sb2dnZWQtb3V0")

	st := startStack(t, stackConfig{Directive: "\t\tstore redis " + srv.URL + "\n"})
	rdsWantProxied(t, st.Base, kept)
	rdsWantVectorDecrypts(t, st.Base, kept)
	wantError(t, get(t, st.Base+"/api/orders", gone), http.StatusUnauthorized, "invalid_token")
	wantError(t, send(t, http.MethodPost, st.Base+"/wx/refresh", bearer(gone), ""), http.StatusUnauthorized, "invalid_token")
	// And after rotating away from the key the old version used.
	rotReload(t, st, "\t\tsigning_key "+rotNewKey+" "+testSigningKey+"\n\t\tstore redis "+srv.URL+"\n")
	fresh := rotRefresh(t, st.Base, kept)
	rotReload(t, st, "\t\tsigning_key "+rotNewKey+"\n\t\tstore redis "+srv.URL+"\n")
	rdsWantVectorDecrypts(t, st.Base, fresh)
}

// rotConcurrentRefreshes refreshes token n times at once, across bases,
// and requires every answer to be 200 and the session to be kept.
func rotConcurrentRefreshes(t *testing.T, token string, n int, bases ...string) {
	t.Helper()
	var wg sync.WaitGroup
	tokens := make([]string, n)
	statuses := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := trySend(http.MethodPost, bases[i%len(bases)]+"/wx/refresh", bearer(token), "")
			if err != nil {
				return
			}
			statuses[i] = r.Status
			var lr loginResult
			if json.Unmarshal(r.Body, &lr) == nil {
				tokens[i] = lr.Token
			}
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusOK {
			t.Fatalf("refresh %d of %d at once answered %d, want 200", i+1, n, s)
		}
	}
	for i, base := range bases {
		rdsWantVectorDecrypts(t, base, tokens[i])
	}
	rdsWantVectorDecrypts(t, bases[0], token)
}

func TestConcurrentRefreshesOfOneToken(t *testing.T) {
	st := startStack(t, stackConfig{})
	rdsVectorCode(st.WeChat, "burst")
	tok := st.login(t, "burst").Token
	rotConcurrentRefreshes(t, tok, 50, st.Base)
}
