package wechatauth

import (
	"testing"

	"github.com/caddy-wechat/wechatauth/internal/metrics"
)

// However many errcodes (or WeChat Pay codes) the API base answers, the
// gateways' metrics count them under a bounded set of labels.
func TestGatewayMetricLabelsStayFewWhateverWeChatAnswers(t *testing.T) {
	// Whatever other tests of the process counted before.
	errcodeLabels, payCodeLabels = metrics.Labels{Max: 100}, metrics.Labels{Max: 100}
	if got := errcodeLabel(45011); got != "45011" {
		t.Fatalf("errcode 45011 counted as %q", got)
	}
	api, pay := map[string]bool{}, map[string]bool{}
	for i := range 1000 {
		api[errcodeLabel(700000+i)] = true
		// WeChat Pay's codes are capital letters and '_'.
		code := "CODE_" + string(rune('A'+i%26)) + string(rune('A'+i/26%26)) + string(rune('A'+i/676))
		pay[payResult(400, []byte(`{"code":"`+code+`"}`))] = true
	}
	if len(api) > errcodeLabels.Max+1 || len(pay) > payCodeLabels.Max+1 {
		t.Errorf("1,000 codes made %d api and %d pay labels, want at most %d and %d", len(api), len(pay), errcodeLabels.Max+1, payCodeLabels.Max+1)
	}
	if got := errcodeLabel(45011); got != "45011" {
		t.Errorf("errcode 45011, counted before, is now counted as %q", got)
	}
}
