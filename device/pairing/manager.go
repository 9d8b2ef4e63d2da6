package pairing

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.etcd.io/bbolt"

	"github.com/camd-project/camd/storage"
)

// Role is what a paired user may do.
type Role uint8

// Roles.
const (
	Viewer Role = iota + 1 // watches and listens
	Owner                  // also changes settings, manages users, updates, resets
)

func (r Role) String() string {
	switch r {
	case Viewer:
		return "viewer"
	case Owner:
		return "owner"
	}
	return "none"
}

// ParseRole reads "viewer" or "owner".
func ParseRole(s string) (Role, error) {
	switch s {
	case "viewer":
		return Viewer, nil
	case "owner":
		return Owner, nil
	}
	return 0, fmt.Errorf("pairing: role %q is not viewer or owner", s)
}

func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

func (r *Role) UnmarshalText(b []byte) error {
	v, err := ParseRole(string(b))
	*r = v
	return err
}

// Errors of the pairing exchange and of credentials.
var (
	ErrWindowClosed = errors.New("pairing: the pairing window is closed (press the pair button, or ask the owner)")
	ErrLocked       = errors.New("pairing: locked after too many failed attempts; factory reset to pair again")
	ErrBusy         = errors.New("pairing: another pairing is in progress; try again shortly")
	ErrBadNonce     = errors.New("pairing: unknown or expired pairing exchange")
	ErrBadProof     = errors.New("pairing: wrong pairing code")
	ErrBadInvite    = errors.New("pairing: unknown, used or expired invitation")
	ErrBadName      = errors.New("pairing: a name is 1 to 64 printable characters")

	ErrNoCredential      = errors.New("pairing: no credential")
	ErrUnknownCredential = errors.New("pairing: unknown or revoked credential")
	ErrOtherDevice       = errors.New("pairing: credential belongs to another device")
	ErrExpired           = errors.New("pairing: credential expired")
	ErrNoUser            = errors.New("pairing: no such user")
)

// Options configure a Manager. The zero value of each field but DeviceID
// and Fingerprint means its default.
type Options struct {
	// DeviceID is the device's ID as camd writes it (base32, 10 bytes).
	DeviceID string
	// Fingerprint is the SHA-256 of the device's TLS certificate.
	Fingerprint [FingerprintSize]byte
	// Window is how long a window opened on request stays open
	// (default 15 min).
	Window time.Duration
	// WindowFailures close the window (default 20); LifetimeFailures lock
	// pairing until factory reset (default 100).
	WindowFailures, LifetimeFailures int
	// ExchangeTimeout frees a started exchange that never finished
	// (default 30 s).
	ExchangeTimeout time.Duration
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// User is a paired phone, browser or client.
type User struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Role    Role      `json:"role"`
	Created time.Time `json:"created"`
	// Expires, when set, ends the user's access.
	Expires   time.Time `json:"expires,omitzero"`
	TokenHash []byte    `json:"token_hash,omitempty"`
}

// state is what survives restarts besides users and invitations.
type state struct {
	Secret           []byte    `json:"secret"`
	Discriminator    uint16    `json:"discriminator"`
	WindowUntil      time.Time `json:"window_until,omitzero"`
	WindowFailures   int       `json:"window_failures"`
	LifetimeFailures int       `json:"lifetime_failures"`
}

type invite struct {
	Secret  []byte    `json:"secret"`
	Role    Role      `json:"role"`
	Expires time.Time `json:"expires"`
	By      string    `json:"by"`
	// Access is how long the invited user's credential lasts (0: until
	// revoked).
	Access time.Duration `json:"access,omitempty"`
}

type exchange struct {
	nonce    []byte
	inviteID string
	expires  time.Time
}

// Manager holds users, credentials and the pairing state, persisted in the
// catalog.
type Manager struct {
	cat      *storage.Catalog
	opts     Options
	deviceID [DeviceIDSize]byte
	log      *slog.Logger

	mu       sync.Mutex
	st       state
	users    map[string]*User
	byToken  map[[32]byte]*User
	ex       *exchange
	onChange []func()
}

var (
	keyState     = []byte("state")
	invitePrefix = "invite:"
)

// Open loads the pairing state and users from the catalog, creating the
// first secret and discriminator on first boot.
func Open(cat *storage.Catalog, opts Options) (*Manager, error) {
	id, err := ParseDeviceID(opts.DeviceID)
	if err != nil {
		return nil, err
	}
	if opts.Window <= 0 {
		opts.Window = 15 * time.Minute
	}
	if opts.WindowFailures <= 0 {
		opts.WindowFailures = 20
	}
	if opts.LifetimeFailures <= 0 {
		opts.LifetimeFailures = 100
	}
	if opts.ExchangeTimeout <= 0 {
		opts.ExchangeTimeout = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{cat: cat, opts: opts, deviceID: id, log: opts.Logger}
	if err := m.load(); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Manager) load() error {
	m.users = make(map[string]*User)
	m.byToken = make(map[[32]byte]*User)
	return m.cat.Update(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(storage.BucketPairing).Get(keyState); v != nil {
			if err := json.Unmarshal(v, &m.st); err != nil {
				return fmt.Errorf("pairing: state: %w", err)
			}
		}
		if len(m.st.Secret) != SecretSize {
			m.st.Secret = random(SecretSize)
			m.st.Discriminator = binary.BigEndian.Uint16(random(2)) & 0xfff
			if err := m.putState(tx); err != nil {
				return err
			}
		}
		return tx.Bucket(storage.BucketUsers).ForEach(func(k, v []byte) error {
			var u User
			if err := json.Unmarshal(v, &u); err != nil {
				m.log.Warn("pairing: skipping a damaged user record", "id", string(k))
				return nil
			}
			m.index(&u)
			return nil
		})
	})
}

func (m *Manager) index(u *User) {
	m.users[u.ID] = u
	var h [32]byte
	copy(h[:], u.TokenHash)
	m.byToken[h] = u
}

func (m *Manager) putState(tx *bbolt.Tx) error {
	b, _ := json.Marshal(m.st)
	return tx.Bucket(storage.BucketPairing).Put(keyState, b)
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// OnChange registers f to run (without the manager's lock) after the
// paired state or the discriminator changed.
func (m *Manager) OnChange(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onChange = append(m.onChange, f)
}

func (m *Manager) changed() {
	m.mu.Lock()
	fs := slices.Clone(m.onChange)
	m.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

// Paired reports whether any user is paired.
func (m *Manager) Paired() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.users) > 0
}

// Discriminator is the short value, shown in the QR code and announced on
// the LAN, that tells cameras being set up apart. It is not secret.
func (m *Manager) Discriminator() uint16 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.Discriminator
}

// SetupPayload is the device's setup QR payload. It carries the secret: it
// is shown on the device's own terminal, screen or sticker, never served.
func (m *Manager) SetupPayload(host netip.AddrPort) Payload {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := Payload{Kind: Setup, Role: Owner, DeviceID: m.deviceID, Fingerprint: m.opts.Fingerprint, Discriminator: m.st.Discriminator, Host: host}
	copy(p.Secret[:], m.st.Secret)
	return p
}

// windowOpen must be called with m.mu held.
func (m *Manager) windowOpen() bool {
	if m.st.LifetimeFailures >= m.opts.LifetimeFailures {
		return false
	}
	if len(m.users) == 0 && m.st.WindowFailures < m.opts.WindowFailures {
		return true
	}
	return m.opts.Now().Before(m.st.WindowUntil)
}

// Window reports whether pairing is open, until when (zero: until paired),
// and whether pairing is locked for good.
func (m *Manager) Window() (open bool, until time.Time, locked bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	open = m.windowOpen()
	if open && m.opts.Now().Before(m.st.WindowUntil) {
		until = m.st.WindowUntil
	}
	return open, until, m.st.LifetimeFailures >= m.opts.LifetimeFailures
}

// OpenWindow opens pairing for Options.Window (the owner's request, a
// short press of the pair button, or `camd pair-window`).
func (m *Manager) OpenWindow() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.st.LifetimeFailures >= m.opts.LifetimeFailures {
		return ErrLocked
	}
	m.st.WindowUntil = m.opts.Now().Add(m.opts.Window)
	m.st.WindowFailures = 0
	m.log.Info("pairing: window open", "until", m.st.WindowUntil.Format(time.RFC3339))
	return m.cat.Update(m.putState)
}

// Start begins an exchange and returns its nonce. With an invitation ID
// the window need not be open.
func (m *Manager) Start(inviteID string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.opts.Now()
	if m.st.LifetimeFailures >= m.opts.LifetimeFailures {
		return nil, ErrLocked
	}
	if m.ex != nil && now.Before(m.ex.expires) {
		return nil, ErrBusy
	}
	if inviteID != "" {
		if _, err := m.getInvite(inviteID); err != nil {
			return nil, err
		}
	} else if !m.windowOpen() {
		return nil, ErrWindowClosed
	}
	m.ex = &exchange{nonce: random(32), inviteID: inviteID, expires: now.Add(m.opts.ExchangeTimeout)}
	return slices.Clone(m.ex.nonce), nil
}

// Proof is what a client sends to prove it holds the secret:
// HMAC-SHA256(secret, "camd-pair-v1" 0x00 deviceID 0x00 nonce 0x00 name).
func Proof(secret []byte, deviceID string, nonce []byte, name string) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("camd-pair-v1\x00" + deviceID + "\x00"))
	mac.Write(nonce)
	mac.Write([]byte("\x00" + name))
	return mac.Sum(nil)
}

// InviteID names an invitation without revealing its secret.
func InviteID(secret []byte) string {
	h := sha256.Sum256(secret)
	return hex.EncodeToString(h[:8])
}

// FinishRequest completes an exchange.
type FinishRequest struct {
	Nonce    []byte
	Name     string
	Proof    []byte
	InviteID string
}

// Finish checks the proof and, if it holds, adds the user and returns it
// with its credential. A failure counts against the window and the
// device's lifetime.
func (m *Manager) Finish(req FinishRequest) (User, string, error) {
	if !validName(req.Name) {
		return User{}, "", ErrBadName
	}
	m.mu.Lock()
	ex := m.ex
	now := m.opts.Now()
	if ex == nil || now.After(ex.expires) || subtle.ConstantTimeCompare(ex.nonce, req.Nonce) != 1 || ex.inviteID != req.InviteID {
		err := m.fail("unknown exchange")
		m.mu.Unlock()
		return User{}, "", errors.Join(ErrBadNonce, err)
	}
	m.ex = nil // one proof per nonce: a replay finds nothing
	secret, role, access := m.st.Secret, Owner, time.Duration(0)
	var inv invite
	if req.InviteID != "" {
		var err error
		if inv, err = m.getInvite(req.InviteID); err != nil {
			m.mu.Unlock()
			return User{}, "", err
		}
		secret, role, access = inv.Secret, inv.Role, inv.Access
	} else if !m.windowOpen() {
		m.mu.Unlock()
		return User{}, "", ErrWindowClosed
	} else if m.hasOwner() {
		role = Viewer
	}
	if !hmac.Equal(Proof(secret, m.opts.DeviceID, ex.nonce, req.Name), req.Proof) {
		err := m.fail("wrong proof")
		m.mu.Unlock()
		return User{}, "", errors.Join(ErrBadProof, err)
	}
	token := "camd1." + m.opts.DeviceID + "." + base64.RawURLEncoding.EncodeToString(random(32))
	h := sha256.Sum256([]byte(token))
	u := &User{ID: hex.EncodeToString(random(8)), Name: req.Name, Role: role, Created: now.UTC(), TokenHash: h[:]}
	if access > 0 {
		u.Expires = now.Add(access).UTC()
	}
	wasPaired := len(m.users) > 0
	err := m.cat.Update(func(tx *bbolt.Tx) error {
		if req.InviteID != "" {
			if err := tx.Bucket(storage.BucketPairing).Delete([]byte(invitePrefix + req.InviteID)); err != nil {
				return err
			}
		} else {
			m.st.Secret = random(SecretSize)
			m.st.WindowUntil = time.Time{}
		}
		m.st.WindowFailures = 0
		if err := m.putState(tx); err != nil {
			return err
		}
		b, _ := json.Marshal(u)
		return tx.Bucket(storage.BucketUsers).Put([]byte(u.ID), b)
	})
	if err != nil {
		m.mu.Unlock()
		return User{}, "", fmt.Errorf("pairing: saving the new user: %w", err)
	}
	m.index(u)
	m.mu.Unlock()
	m.log.Info("pairing: paired", "user", u.ID, "name", u.Name, "role", u.Role, "invited", req.InviteID != "")
	if !wasPaired {
		m.changed()
	}
	return *u, token, nil
}

func validName(s string) bool {
	if s == "" || len(s) > 64 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func (m *Manager) hasOwner() bool {
	for _, u := range m.users {
		if u.Role == Owner {
			return true
		}
	}
	return false
}

// fail counts a failed attempt; called with m.mu held. It returns an error
// that says what the failure changed, if anything.
func (m *Manager) fail(why string) error {
	m.st.WindowFailures++
	m.st.LifetimeFailures++
	var err error
	switch {
	case m.st.LifetimeFailures >= m.opts.LifetimeFailures:
		err = ErrLocked
	case m.st.WindowFailures >= m.opts.WindowFailures:
		m.st.WindowUntil = time.Time{}
		err = ErrWindowClosed
	}
	if uerr := m.cat.Update(m.putState); uerr != nil {
		m.log.Error("pairing: cannot save failure counters", "err", uerr)
	}
	m.log.Warn("pairing: attempt failed", "why", why, "window_failures", m.st.WindowFailures, "lifetime_failures", m.st.LifetimeFailures, "result", err)
	return err
}

// Failures returns the failure counters: this window's and the lifetime's.
func (m *Manager) Failures() (window, lifetime int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.WindowFailures, m.st.LifetimeFailures
}

// Authenticate returns the user a credential belongs to.
func (m *Manager) Authenticate(token string) (User, error) {
	if token == "" {
		return User{}, ErrNoCredential
	}
	if dev, _, ok := strings.Cut(strings.TrimPrefix(token, "camd1."), "."); !strings.HasPrefix(token, "camd1.") || !ok {
		return User{}, ErrUnknownCredential
	} else if dev != m.opts.DeviceID {
		return User{}, ErrOtherDevice
	}
	h := sha256.Sum256([]byte(token))
	m.mu.Lock()
	u := m.byToken[h]
	var out User
	if u != nil {
		out = *u
	}
	m.mu.Unlock()
	if u == nil {
		return User{}, ErrUnknownCredential
	}
	if !out.Expires.IsZero() && !m.opts.Now().Before(out.Expires) {
		return User{}, ErrExpired
	}
	return out, nil
}

// InviteOptions describe an invitation.
type InviteOptions struct {
	Role Role
	// Valid is how long the invitation can be used (default 24 h).
	Valid time.Duration
	// Access limits the invited user's access (0: until revoked).
	Access time.Duration
	// By is the inviting owner's user ID.
	By string
}

// Invite makes a one-time invitation payload.
func (m *Manager) Invite(opts InviteOptions, host netip.AddrPort) (Payload, error) {
	if opts.Role != Viewer && opts.Role != Owner {
		return Payload{}, fmt.Errorf("pairing: invitation role %v", opts.Role)
	}
	if opts.Valid <= 0 {
		opts.Valid = 24 * time.Hour
	}
	secret := random(SecretSize)
	inv := invite{Secret: secret, Role: opts.Role, Expires: m.opts.Now().Add(opts.Valid).UTC(), By: opts.By, Access: opts.Access}
	b, _ := json.Marshal(inv)
	if err := m.cat.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(storage.BucketPairing).Put([]byte(invitePrefix+InviteID(secret)), b)
	}); err != nil {
		return Payload{}, fmt.Errorf("pairing: saving invitation: %w", err)
	}
	m.mu.Lock()
	p := Payload{Kind: Invite, Role: opts.Role, DeviceID: m.deviceID, Fingerprint: m.opts.Fingerprint, Discriminator: m.st.Discriminator, Host: host}
	m.mu.Unlock()
	copy(p.Secret[:], secret)
	return p, nil
}

func (m *Manager) getInvite(id string) (invite, error) {
	var inv invite
	var found bool
	m.cat.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(storage.BucketPairing).Get([]byte(invitePrefix + id)); v != nil {
			found = json.Unmarshal(v, &inv) == nil
		}
		return nil
	})
	if !found || !m.opts.Now().Before(inv.Expires) {
		return inv, ErrBadInvite
	}
	return inv, nil
}

// Users lists the paired users, oldest first, without credentials.
func (m *Manager) Users() []User {
	m.mu.Lock()
	defer m.mu.Unlock()
	var us []User
	for _, u := range m.users {
		c := *u
		c.TokenHash = nil
		us = append(us, c)
	}
	slices.SortFunc(us, func(a, b User) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return us
}

// Rename changes a user's name.
func (m *Manager) Rename(id, name string) error {
	if !validName(name) {
		return ErrBadName
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.users[id]
	if u == nil {
		return ErrNoUser
	}
	c := *u
	c.Name = name
	b, _ := json.Marshal(c)
	if err := m.cat.Update(func(tx *bbolt.Tx) error { return tx.Bucket(storage.BucketUsers).Put([]byte(id), b) }); err != nil {
		return fmt.Errorf("pairing: %w", err)
	}
	u.Name = name
	return nil
}

// Revoke removes a user; its credential stops working at once. Removing
// the last owner removes every user and reopens pairing.
func (m *Manager) Revoke(id string) error {
	m.mu.Lock()
	u := m.users[id]
	if u == nil {
		m.mu.Unlock()
		return ErrNoUser
	}
	lastOwner := u.Role == Owner
	for _, o := range m.users {
		if o.ID != id && o.Role == Owner {
			lastOwner = false
		}
	}
	var gone []*User
	if lastOwner {
		for _, o := range m.users {
			gone = append(gone, o)
		}
	} else {
		gone = []*User{u}
	}
	err := m.cat.Update(func(tx *bbolt.Tx) error {
		for _, g := range gone {
			if err := tx.Bucket(storage.BucketUsers).Delete([]byte(g.ID)); err != nil {
				return err
			}
		}
		if lastOwner {
			m.st.WindowFailures = 0
			return m.putState(tx)
		}
		return nil
	})
	if err != nil {
		m.mu.Unlock()
		return fmt.Errorf("pairing: %w", err)
	}
	for _, g := range gone {
		delete(m.users, g.ID)
		var h [32]byte
		copy(h[:], g.TokenHash)
		delete(m.byToken, h)
	}
	m.mu.Unlock()
	m.log.Info("pairing: user revoked", "user", id, "all_users_removed", lastOwner)
	if lastOwner {
		m.changed()
	}
	return nil
}

// Reset forgets every user, invitation and counter and makes a new secret
// and discriminator: part of a factory reset.
func (m *Manager) Reset() error {
	m.mu.Lock()
	err := m.cat.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{storage.BucketUsers, storage.BucketPairing} {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		m.st, m.ex = state{}, nil
		err = m.load()
	}
	m.mu.Unlock()
	if err != nil {
		return fmt.Errorf("pairing: reset: %w", err)
	}
	m.changed()
	return nil
}
