package redistest

import (
	"context"
	"strings"
	"testing"
)

// The ACL docs/redis.md gives the user wechat_auth runs as (the rules
// after ACL SETUSER wechat_auth, with ACLPassword for PASSWORD), and the
// one it gives that user on Sentinels. Tests that connect as ACLUser show
// these rules are enough; TestDocsGiveTheACLs keeps the page and these in
// step.
const (
	ACLUser     = "wechat_auth"
	ACLPassword = "acl-password-for-tests"
	ACL         = "on >" + ACLPassword + " resetkeys ~wechat_auth:* resetchannels &wechat_auth:* -@all +get +set +setnx +del +pexpire +pexpireat +pttl +hget +hgetall +hmget +hset +hdel +hincrby +zadd +zrem +zscore +zrangebyscore +zrevrange +zremrangebyscore +zremrangebyrank +evalsha +eval +time +publish +subscribe +ping +info +wait +select +cluster|slots"
	SentinelACL = "on >" + ACLPassword + " resetchannels &+switch-master &+replica-reconf-done -@all +sentinel|get-master-addr-by-name +sentinel|sentinels +subscribe +ping"
)

// SetUser creates (or replaces) ACLUser on the server with rule.
func (s *Server) SetUser(t testing.TB, rule string) {
	t.Helper()
	c := s.Client()
	defer c.Close()
	args := []any{"ACL", "SETUSER", ACLUser, "reset"}
	for _, f := range strings.Fields(rule) {
		args = append(args, f)
	}
	if err := c.Do(context.Background(), args...).Err(); err != nil {
		t.Fatal(err)
	}
}
