package outbox

import "time"

// defaultSchedule is the wait before each retry: the first within 10 s,
// then growing, never longer than 10 minutes.
var defaultSchedule = []time.Duration{
	5 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute,
}

// DefaultBackoff is the wait before retry number attempt (0 for the first
// retry after the synchronous attempt failed): 5 s, 15 s, 30 s, 1 min,
// 2 min, 5 min, then every 10 min.
func DefaultBackoff(attempt int) time.Duration {
	if attempt < 0 {
		attempt = 0
	}
	if attempt >= len(defaultSchedule) {
		return defaultSchedule[len(defaultSchedule)-1]
	}
	return defaultSchedule[attempt]
}
