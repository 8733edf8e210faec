package outbox

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
)

// maxReply bounds the upstream's answer kept for a passive reply.
const maxReply = 1 << 20

// deliver posts r to its upstream (Config.Route's pick) once, signed by
// signer (the record's, from settings): 2xx within timeout is a
// delivery, whose status and body are returned.
func (o *Outbox) deliver(ctx context.Context, r *record, timeout time.Duration, signer string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	to := r.To
	if o.cfg.Route != nil {
		if to = o.cfg.Route(r.Receiver, r.To); to != r.To {
			o.logRouted(r, to)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, to, bytes.NewReader(r.Body))
	if err != nil {
		return 0, nil, err
	}
	for k, v := range r.Header {
		req.Header[k] = v
	}
	if o.cfg.Prepare != nil {
		o.cfg.Prepare(signer, r.Receiver, to, req.Header)
	}
	resp, err := o.client.Do(req)
	if err != nil {
		return 0, nil, shownError(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, nil, fmt.Errorf("upstream answered %d", resp.StatusCode)
	}
	switch {
	case err != nil:
		// Taken, but the reply was cut short: deliver no partial reply.
		return resp.StatusCode, nil, nil
	case len(body) > maxReply:
		// Taken, but a reply cut to the limit would be broken XML or JSON.
		o.log.Warn("outbox: the upstream's reply is over 1 MiB; it is not passed on",
			zap.String("kind", r.Kind), zap.String("event_id", r.ID))
		return resp.StatusCode, nil, nil
	}
	return resp.StatusCode, body, nil
}

// routedLogEvery is how often one move of a receiver's events to another
// upstream is logged: a backlog moved by a reload is one line, not one an
// attempt.
const routedLogEvery = 10 * time.Minute

// logRouted says that an attempt of r goes to to, not the upstream r was
// queued for. Expected after a reload that moved the receiver; otherwise
// instances sharing the store deliver to different upstreams.
func (o *Outbox) logRouted(r *record, to string) {
	key := r.Kind + "\x00" + r.Receiver + "\x00" + r.To + "\x00" + to
	now := time.Now()
	if last, ok := o.routed.Load(key); ok && now.Sub(last.(time.Time)) < routedLogEvery {
		return
	}
	o.routed.Store(key, now)
	o.log.Info("outbox: the receiver's events go to its upstream of now, not the one they were queued for",
		zap.String("kind", r.Kind), zap.String("receiver", r.Receiver), zap.String("event_id", r.ID),
		zap.String("queued_for", loggableURL(r.To)), zap.String("sent_to", loggableURL(to)))
}

// loggableURL is an upstream URL as it may be logged: scheme, host and
// path, without the user or query, which may carry a key.
func loggableURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unreadable URL)"
	}
	return u.Scheme + "://" + u.Host + u.EscapedPath()
}

// errUnreadable stands for a transport error that may quote the
// upstream's answer.
var errUnreadable = errors.New("the upstream's answer could not be read (net/http's words withheld: they may quote it)")

// shownError is a transport error as it may be logged and returned to the
// receiver: the URL without its query (the upstream's URL may carry a key
// there, ?key=…; net/http already hides a password), and none of the
// upstream's own bytes, which net/http quotes when an answer is malformed
// (they may be message content). Network, TLS and certificate errors,
// timeouts and a closed connection say what they are.
func shownError(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return errUnreadable
	}
	u, _, _ := strings.Cut(ue.URL, "?")
	cause := ue.Err
	if !sayable(cause) {
		cause = errUnreadable
	}
	return &url.Error{Op: ue.Op, URL: u, Err: cause}
}

// sayable reports whether a transport error's text holds none of the
// upstream's bytes.
func sayable(err error) bool {
	var (
		ne  net.Error
		cve *tls.CertificateVerificationError
		uae x509.UnknownAuthorityError
		he  x509.HostnameError
		cie x509.CertificateInvalidError
		rhe tls.RecordHeaderError
		ae  tls.AlertError
	)
	switch {
	case errors.As(err, &ne), errors.As(err, &cve), errors.As(err, &uae), errors.As(err, &he),
		errors.As(err, &cie), errors.As(err, &rhe), errors.As(err, &ae):
		return true
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	}
	// net/http's own sentence, with nothing of the answer in it.
	return err.Error() == "http: server gave HTTP response to HTTPS client"
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
