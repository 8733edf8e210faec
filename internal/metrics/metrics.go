// Package metrics holds the Prometheus collectors of wechat_auth and
// wechat_api: made once per process, registered with every config's
// registry.
package metrics

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collectors are made once per process and registered with the registry of
// every config Caddy loads, so counts keep rising across `caddy reload`.
// Labels never carry anything per user.
var (
	once          sync.Once
	Logins        *prometheus.CounterVec
	Verifications *prometheus.CounterVec
	Decryptions   *prometheus.CounterVec
	WeChatCalls   *prometheus.CounterVec
	WeChatLatency *prometheus.HistogramVec
	Store         *prometheus.CounterVec
	APIRequests   *prometheus.CounterVec
	WebLogins     *prometheus.CounterVec
	WebCSRF       prometheus.Counter
	WebUnbound    prometheus.Counter
	Deliveries    *prometheus.CounterVec
	OutboxPending *prometheus.GaugeVec
	PayRequests   *prometheus.CounterVec

	// The token verification counters, resolved once: looking a label up
	// costs a hash and a map lookup, too much for every proxied request.
	VerifiedOK, VerifiedMissing, VerifiedInvalid, VerifiedRevoked prometheus.Counter
)

// Init makes the collectors once and registers them with registry (nil:
// make only).
func Init(registry *prometheus.Registry) error {
	const ns, sub = "caddy", "wechat_auth"
	once.Do(func() {
		Logins = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "logins_total",
			Help: "Logins by result: ok, or the error code answered.",
		}, []string{"result"})
		Verifications = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "token_verifications_total",
			Help: "Bearer token checks by result: ok, missing, invalid, revoked.",
		}, []string{"result"})
		VerifiedOK = Verifications.WithLabelValues("ok")
		VerifiedMissing = Verifications.WithLabelValues("missing")
		VerifiedInvalid = Verifications.WithLabelValues("invalid")
		VerifiedRevoked = Verifications.WithLabelValues("revoked")
		Decryptions = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "decryptions_total",
			Help: "Open-data decryptions by result: ok, or the error code answered.",
		}, []string{"result"})
		WeChatCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "wechat_requests_total",
			Help: "Calls to the WeChat API by API and result: ok, unavailable, or WeChat's errcode.",
		}, []string{"api", "result"})
		WeChatLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "wechat_request_duration_seconds",
			Help:    "Latency of calls to the WeChat API.",
			Buckets: prometheus.DefBuckets,
		}, []string{"api", "result"})
		Store = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "session_store_total",
			Help: "Session store operations by op (get, set, delete, revoke) and result (hit, miss, ok, dropped, error).",
		}, []string{"op", "result"})
		APIRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "api_requests_total",
			Help: "Calls through the wechat_api gateway by path (an allow entry, or other) and result: ok, WeChat's errcode, unavailable, or the gateway's own error code.",
		}, []string{"path", "result"})
		WebLogins = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "web_logins_total",
			Help: "Web logins by flow (oa: inside WeChat, qr: website QR, handoff: mini program web-view) and result: ok, the error code answered, or confirm (a handoff link's page asking a browser outside the web-view first).",
		}, []string{"flow", "result"})
		WebCSRF = prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "web_csrf_refused_total",
			Help: "Cookie-authenticated writes refused because their Origin or Referer is not this site or a return_to origin.",
		})
		WebUnbound = prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "web_state_unbound_total",
			Help: "Web login callbacks inside WeChat accepted without the state cookie (WeChat's browser dropped it).",
		})
		Deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "deliveries_total",
			Help: "Verified WeChat events (kind push, pay_notify) handed to the upstream, by result: delivered, queued, retried, dropped, duplicate, busy, failed.",
		}, []string{"kind", "result"})
		OutboxPending = prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "outbox_pending",
			Help: "Events of kind waiting in the durable outbox for the upstream to take them.",
		}, []string{"kind"})
		PayRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "pay_requests_total",
			Help: "Calls through the wechat_pay gateway by path (an allow entry, or other) and result: ok, WeChat Pay's error code, unavailable, or the gateway's own error code.",
		}, []string{"path", "result"})
	})
	if registry == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{
		Logins, Verifications, Decryptions,
		WeChatCalls, WeChatLatency, Store, APIRequests,
		WebLogins, WebCSRF, WebUnbound,
		Deliveries, OutboxPending,
		WeChatCalls, WeChatLatency, Store, APIRequests, PayRequests,
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

// ObserveWeChat records one call to WeChat; it is the wechat.Client's
// Observer.
func ObserveWeChat(api, result string, d time.Duration) {
	WeChatCalls.WithLabelValues(api, result).Inc()
	WeChatLatency.WithLabelValues(api, result).Observe(d.Seconds())
}

// CountStore counts one session store operation.
func CountStore(op, result string) { Store.WithLabelValues(op, result).Inc() }
