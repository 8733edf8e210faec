package outbox

import "time"

// Retries come after firstRetry, secondRetry, then at most every
// bridgeEvery during an event's first bridgeFor, the length of a deploy,
// so that an upstream back from one gets its events within 30 s; then
// they back off along lateSchedule.
const (
	firstRetry  = 5 * time.Second
	secondRetry = 10 * time.Second
	bridgeEvery = 20 * time.Second
	bridgeFor   = 10 * time.Minute

	// bridgeRetries is how many retries the first bridgeFor holds.
	bridgeRetries = 2 + int((bridgeFor-firstRetry-secondRetry+bridgeEvery-1)/bridgeEvery)
)

var lateSchedule = []time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute}

// DefaultBackoff is the wait before retry number attempt (0 for the first
// retry after the synchronous attempt failed): 5 s, 10 s, then every 20 s
// for the event's first 10 minutes; then 1 min, 2 min, 5 min, and every
// 10 min.
func DefaultBackoff(attempt int) time.Duration {
	switch {
	case attempt <= 0:
		return firstRetry
	case attempt == 1:
		return secondRetry
	case attempt < bridgeRetries:
		return bridgeEvery
	}
	return lateSchedule[min(attempt-bridgeRetries, len(lateSchedule)-1)]
}
