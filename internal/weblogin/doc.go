// Package weblogin holds the pieces of a WeChat web login that need no
// server: checking where a login may return to, the OAuth state and the
// cookie that binds it to one browser, the session cookie, the CSRF check
// of cookie-authenticated writes, the one-time handoff ticket, and the
// single-use store they are kept in. It imports only the standard library.
package weblogin
