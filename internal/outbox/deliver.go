package outbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
		to = o.cfg.Route(r.Receiver, r.To)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, to, bytes.NewReader(r.Body))
	if err != nil {
		return 0, nil, err
	}
	for k, v := range r.Header {
		req.Header[k] = v
	}
	if o.cfg.Prepare != nil {
		o.cfg.Prepare(signer, to, req.Header)
	}
	resp, err := o.client.Do(req)
	if err != nil {
		return 0, nil, withoutQuery(err)
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

// withoutQuery drops the query from the URL a transport error quotes: the
// upstream's URL may carry a key there (?key=…), and the error is logged
// and returned to the receiver. net/http already hides a password.
func withoutQuery(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if i := strings.IndexByte(ue.URL, '?'); i >= 0 {
			ue.URL = ue.URL[:i]
		}
	}
	return err
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
