package wechatauth

import "testing"

func TestSplitQueryDropsEverySpellingOfAccessToken(t *testing.T) {
	for _, p := range []string{
		"access_token=x", "ACCESS_TOKEN=x", "Access_Token=x", "access_token[]=x", "access_token[0]=x",
		"access_token%00=x", "access.token=x", "access%5Ftoken=x", "access%5ftoken=x", "a=1;access_token=x",
		"a=1%3Baccess_token%3Dx", "access%255Ftoken=x", "Access+Token=x", "acce%C5%BFs_token=x",
		"%20access_token%20=x", "a=b%26access_token%3Dx", "access_token", "access-token=x",
	} {
		q, aerr := splitQuery("lang=en&"+p+"&page=1", false)
		if aerr != nil || q.rest != "lang=en&page=1" {
			t.Errorf("%q: rest %q, %v; want it dropped", p, q.rest, aerr)
		}
	}
	for _, p := range []string{"lang=zh_CN", "openid=o1", "scene=access", "token=x", "accesstoken=x", "page=pages%2Findex"} {
		if q, aerr := splitQuery(p, false); aerr != nil || q.rest != p {
			t.Errorf("%q: rest %q, %v; want it kept", p, q.rest, aerr)
		}
	}
	q, aerr := splitQuery("openid=o1&Signature=forged&SIG_METHOD=md5", true)
	if aerr != nil || q.rest != "openid=o1" {
		t.Errorf("signature spellings kept: %q %v", q.rest, aerr)
	}
}
