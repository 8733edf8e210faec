package metrics

import (
	"strconv"
	"testing"
)

func TestLabelsKeepTheFirstValuesAndCountTheRestAsOther(t *testing.T) {
	l := Labels{Max: 3}
	for _, c := range []struct{ v, want string }{
		{"40001", "40001"}, {"45011", "45011"}, {"40001", "40001"}, {"-1", "-1"},
		{"48001", Other}, {"45011", "45011"}, {"-1", "-1"},
	} {
		if got := l.Of(c.v); got != c.want {
			t.Errorf("Of(%q) = %q, want %q", c.v, got, c.want)
		}
	}
	distinct := map[string]bool{}
	for i := range 10000 {
		distinct[l.Of(strconv.Itoa(700000+i))] = true
	}
	if len(distinct) != 1 || !distinct[Other] {
		t.Errorf("10,000 new values counted under %d labels, want only %q", len(distinct), Other)
	}
}
