package redistest

import (
	"os"
	"strings"
	"testing"
)

// docs/redis.md gives the ACLs the tests run with, word for word.
func TestDocsGiveTheACLs(t *testing.T) {
	page, err := os.ReadFile("../../docs/redis.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, rule := range []string{ACL, SentinelACL} {
		line := "ACL SETUSER " + ACLUser + " " + strings.Replace(rule, ">"+ACLPassword, ">PASSWORD", 1)
		if !strings.Contains(string(page), line+"\n") {
			t.Errorf("docs/redis.md does not give\n%s", line)
		}
	}
}
