package wechatauth

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collectors are made once per process and registered with the registry of
// every config Caddy loads, so counts keep rising across `caddy reload`.
// Labels never carry anything per user.
var metrics = struct {
	once          sync.Once
	logins        *prometheus.CounterVec
	verifications *prometheus.CounterVec
	decryptions   *prometheus.CounterVec
	wechatCalls   *prometheus.CounterVec
	wechatLatency *prometheus.HistogramVec
	store         *prometheus.CounterVec
	apiRequests   *prometheus.CounterVec

	// The token verification counters, resolved once: looking a label up
	// costs a hash and a map lookup, too much for every proxied request.
	verifiedOK, verifiedMissing, verifiedInvalid, verifiedRevoked prometheus.Counter
}{}

func initMetrics(registry *prometheus.Registry) error {
	const ns, sub = "caddy", "wechat_auth"
	metrics.once.Do(func() {
		metrics.logins = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "logins_total",
			Help: "Logins by result: ok, or the error code answered.",
		}, []string{"result"})
		metrics.verifications = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "token_verifications_total",
			Help: "Bearer token checks by result: ok, missing, invalid, revoked.",
		}, []string{"result"})
		metrics.verifiedOK = metrics.verifications.WithLabelValues("ok")
		metrics.verifiedMissing = metrics.verifications.WithLabelValues("missing")
		metrics.verifiedInvalid = metrics.verifications.WithLabelValues("invalid")
		metrics.verifiedRevoked = metrics.verifications.WithLabelValues("revoked")
		metrics.decryptions = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "decryptions_total",
			Help: "Open-data decryptions by result: ok, or the error code answered.",
		}, []string{"result"})
		metrics.wechatCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "wechat_requests_total",
			Help: "Calls to the WeChat API by API and result: ok, unavailable, or WeChat's errcode.",
		}, []string{"api", "result"})
		metrics.wechatLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "wechat_request_duration_seconds",
			Help:    "Latency of calls to the WeChat API.",
			Buckets: prometheus.DefBuckets,
		}, []string{"api", "result"})
		metrics.store = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "session_store_total",
			Help: "Session store operations by op (get, set, delete, revoke) and result (hit, miss, ok, dropped, error).",
		}, []string{"op", "result"})
		metrics.apiRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "api_requests_total",
			Help: "Calls through the wechat_api gateway by path (an allow entry, or other) and result: ok, WeChat's errcode, unavailable, or the gateway's own error code.",
		}, []string{"path", "result"})
	})
	if registry == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{
		metrics.logins, metrics.verifications, metrics.decryptions,
		metrics.wechatCalls, metrics.wechatLatency, metrics.store, metrics.apiRequests,
	} {
		// Several wechat_auth handlers in one config register the same
		// collectors; that is expected.
		if err := registry.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

// observeWeChat records one call to WeChat; it is the wechat.Client's
// Observer.
func observeWeChat(api, result string, d time.Duration) {
	metrics.wechatCalls.WithLabelValues(api, result).Inc()
	metrics.wechatLatency.WithLabelValues(api, result).Observe(d.Seconds())
}

func countStore(op, result string) { metrics.store.WithLabelValues(op, result).Inc() }
