package apierr

import (
	"html"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// WantsPage reports whether r is a browser opening a page: a GET (or its
// HEAD, answered with the same headers), or a form's POST, whose Accept
// names text/html. The web login's pages answer such a request's error as
// a page rather than as bare JSON.
func WantsPage(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		// A form's POST navigates; a script's says another mode. Without
		// Fetch Metadata (towards plain HTTP), a form's has its type.
		if m := r.Header.Get("Sec-Fetch-Mode"); m != "navigate" && (m != "" || !formPost(r)) {
			return false
		}
	default:
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// formPost reports whether r's body is an HTML form's.
func formPost(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data"
}

// pageTitle heads every error page: they are all on the way to a login.
const pageTitle = "登录未完成 · Login not completed"

// Link is a link an error page offers: where to go next.
type Link struct{ Href, Text string }

// WritePage answers e as a small HTML page for a person in a browser: its
// sentence, the links given, and the JSON answer Write gives, for whoever
// reads the page's text. Status and headers are Write's. The page loads
// and runs nothing.
func WritePage(w http.ResponseWriter, r *http.Request, e *Error, links ...Link) {
	e.setHeaders(w, r)
	var b strings.Builder
	b.WriteString(`<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">` +
		`<meta name="viewport" content="width=device-width, initial-scale=1"><title>` + pageTitle + `</title></head>` +
		`<body><h1>` + pageTitle + `</h1><p>`)
	b.WriteString(html.EscapeString(e.message))
	b.WriteString(`</p>`)
	for _, l := range links {
		b.WriteString(`<p><a href="` + html.EscapeString(l.Href) + `">` + html.EscapeString(l.Text) + `</a></p>`)
	}
	b.WriteString(`<pre>`)
	b.WriteString(html.EscapeString(string(e.body())))
	b.WriteString("</pre></body></html>\n")
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// No page of another origin may frame it and steer a click onto its
	// links; the site's own may.
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'self'")
	h.Set("X-Frame-Options", "SAMEORIGIN")
	h.Set("X-Content-Type-Options", "nosniff")
	// The page's URL may hold a code or ticket not yet used (a callback
	// refused before its exchange): its links send only the origin.
	h.Set("Referrer-Policy", "strict-origin")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(e.status)
	w.Write([]byte(b.String()))
}
