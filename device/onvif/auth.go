package onvif

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"time"
)

// Why a UsernameToken is refused (each answered as ter:NotAuthorized; the
// log says which).
var (
	ErrNoToken    = errors.New("onvif: no WS-Security UsernameToken")
	ErrNotDigest  = errors.New("onvif: the password is not a PasswordDigest")
	ErrBadToken   = errors.New("onvif: malformed UsernameToken")
	ErrStale      = errors.New("onvif: created time outside the window")
	ErrReplayed   = errors.New("onvif: nonce already used")
	ErrUnknownKey = errors.New("onvif: wrong user name or password")
)

// Bounds of a UsernameToken's fields.
const (
	maxNonceBytes    = 64
	maxUsernameBytes = 128
)

// token is a WS-Security UsernameToken with a PasswordDigest.
type token struct {
	Username string
	Digest   []byte
	Nonce    []byte
	Created  string // as sent: it is hashed as text
	When     time.Time
}

// readToken checks the shape of the UsernameToken n.
func readToken(n *node) (token, error) {
	if n == nil {
		return token{}, ErrNoToken
	}
	pw := n.child("Password")
	if pw == nil || pw.attr("Type") != passwordDigest {
		// PasswordText would carry the key's secret in the clear over
		// plain HTTP: refused.
		return token{}, ErrNotDigest
	}
	t := token{Username: n.text("Username"), Created: n.text("Created")}
	var err error
	if t.Digest, err = base64.StdEncoding.DecodeString(strings.TrimSpace(pw.Text)); err != nil || len(t.Digest) != sha1.Size {
		return token{}, ErrBadToken
	}
	if t.Nonce, err = base64.StdEncoding.DecodeString(n.text("Nonce")); err != nil || len(t.Nonce) < 8 || len(t.Nonce) > maxNonceBytes {
		return token{}, ErrBadToken
	}
	if t.Username == "" || len(t.Username) > maxUsernameBytes {
		return token{}, ErrBadToken
	}
	if t.When, err = time.Parse(time.RFC3339Nano, t.Created); err != nil {
		return token{}, ErrBadToken
	}
	return t, nil
}

// proves reports whether t's digest is Base64(SHA-1(nonce + created +
// secret)), compared in constant time.
func (t token) proves(secret string) bool {
	h := sha1.New()
	h.Write(t.Nonce)
	h.Write([]byte(t.Created))
	h.Write([]byte(secret))
	return subtle.ConstantTimeCompare(h.Sum(nil), t.Digest) == 1
}

// nonces remembers the tokens accepted (their nonce and created time:
// a sniffer can only resend both, as a new created time needs a new
// digest, which needs the secret) for as long as their created time is
// inside the window, so that a captured request cannot be sent again. It holds at most max nonces: when full, the one with
// the oldest created time is forgotten and the floor rises to that time,
// so a token created at or before the floor is refused as stale. A full
// cache makes the window shorter; it never lets a replay through.
//
// One grace: the same token from the same client address within
// reuseGrace of its first use is taken. libonvif (onvif-util) makes its
// nonce from the clock's second, so two of its requests in one
// millisecond carry the same token; a token sniffed on the LAN and sent
// from another address, or later, is still refused.
type nonces struct {
	mu    sync.Mutex
	max   int
	seen  map[string]nonceUse
	floor time.Time
}

type nonceUse struct {
	created, first time.Time
	addr           string
}

// reuseGrace is how long after its first use a token may come again from
// the same address (see nonces).
const reuseGrace = time.Second

func newNonces(max int) *nonces {
	return &nonces{max: max, seen: make(map[string]nonceUse)}
}

// use records the token of nonce and created (used now by a client at
// addr) and reports ErrReplayed when it was seen (beyond the grace),
// ErrStale when created is at or before the floor. oldest is the oldest
// created time still accepted: older entries are dropped when the cache
// is full.
func (c *nonces) use(nonce []byte, created, oldest, now time.Time, addr string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !created.After(c.floor) {
		return ErrStale
	}
	k := created.UTC().Format(time.RFC3339Nano) + "\x00" + string(nonce)
	if u, ok := c.seen[k]; ok {
		if u.addr == addr && now.Sub(u.first) <= reuseGrace {
			return nil
		}
		return ErrReplayed
	}
	if len(c.seen) >= c.max {
		for n, u := range c.seen {
			if u.created.Before(oldest) {
				delete(c.seen, n)
			}
		}
	}
	for len(c.seen) >= c.max {
		var first string
		var ft time.Time
		for n, u := range c.seen {
			if first == "" || u.created.Before(ft) {
				first, ft = n, u.created
			}
		}
		delete(c.seen, first)
		c.floor = ft
		if !created.After(c.floor) {
			return ErrStale
		}
	}
	c.seen[k] = nonceUse{created: created, first: now, addr: addr}
	return nil
}
