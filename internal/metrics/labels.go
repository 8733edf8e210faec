package metrics

import "sync"

// Other is the label value that stands for the values past a Labels' bound.
const Other = "other"

// Labels keeps the values of a label that come from outside, such as the
// errcodes WeChat answers, a bounded set, so that a faulty or hostile
// api_base cannot make one series per answer: the first Max distinct
// values are kept as they are, later new ones are counted as Other.
type Labels struct {
	Max  int
	mu   sync.Mutex
	seen map[string]struct{}
}

// Of is the label value v is counted under.
func (l *Labels) Of(v string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.seen[v]; ok {
		return v
	}
	if len(l.seen) >= l.Max {
		return Other
	}
	if l.seen == nil {
		l.seen = make(map[string]struct{})
	}
	l.seen[v] = struct{}{}
	return v
}
