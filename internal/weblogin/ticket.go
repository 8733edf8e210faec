package weblogin

import (
	"crypto/rand"
	"encoding/base64"
	"time"
)

// TicketTTL is how long a web-view handoff link works.
const TicketTTL = 60 * time.Second

// ticketBytes is the randomness of a ticket: 256 bits.
const ticketBytes = 32

// NewTicket returns a one-time handoff ticket: random, URL-safe (43
// characters of base64url) and holding nothing about the user; what it
// stands for is kept in the store under it.
func NewTicket() string {
	var b [ticketBytes]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ValidTicket reports whether s is shaped as NewTicket makes them, so that
// garbage is refused before the store is asked.
func ValidTicket(s string) bool {
	return len(s) == base64.RawURLEncoding.EncodedLen(ticketBytes) && base64URLOnly(s)
}

// base64URLOnly reports whether s holds only characters of the URL-safe
// base64 alphabet (no padding), the alphabet of tickets and state tags.
func base64URLOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
