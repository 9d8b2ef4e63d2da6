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
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
	Logger          *slog.Logger
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

// newState is the state of a new or factory-reset device: a new secret
// and discriminator.
func newState() state {
	return state{Secret: random(SecretSize), Discriminator: binary.BigEndian.Uint16(random(2)) & 0xfff}
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

// snapshot is the pairing state and the users as the catalog holds them
// at one moment. A published snapshot is never changed, nor are the
// Users it points to: a writer publishes a new one.
type snapshot struct {
	st      state
	users   map[string]*User
	byToken map[[sha256.Size]byte]*User
}

func emptySnapshot(st state) *snapshot {
	return &snapshot{st: st, users: map[string]*User{}, byToken: map[[sha256.Size]byte]*User{}}
}

func (s *snapshot) index(u *User) {
	s.users[u.ID] = u
	s.byToken[tokenKey(u)] = u
}

func tokenKey(u *User) (h [sha256.Size]byte) {
	copy(h[:], u.TokenHash)
	return h
}

// with returns a copy of s with the state st, the users of the IDs drop
// removed and the users put added (replacing those of the same ID).
func (s *snapshot) with(st state, put []*User, drop ...string) *snapshot {
	if len(put) == 0 && len(drop) == 0 {
		return &snapshot{st: st, users: s.users, byToken: s.byToken}
	}
	n := emptySnapshot(st)
	for _, u := range s.users {
		if !slices.Contains(drop, u.ID) {
			n.index(u)
		}
	}
	for _, u := range put {
		if old := n.users[u.ID]; old != nil {
			delete(n.byToken, tokenKey(old))
		}
		n.index(u)
	}
	return n
}

func (s *snapshot) hasOwner() bool {
	for _, u := range s.users {
		if u.Role == Owner {
			return true
		}
	}
	return false
}

// Manager holds users, credentials and the pairing state, persisted in the
// catalog.
//
// Readers (Authenticate on every request, Paired, Window, ...) load the
// current snapshot and never wait for a disk write. A writer holds wmu,
// copies the snapshot, commits the copy's changes to the catalog and only
// then publishes it, so a failed commit leaves the manager as it was:
// memory and disk agree.
type Manager struct {
	cat      *storage.Catalog
	opts     Options
	deviceID [DeviceIDSize]byte
	log      *slog.Logger

	cur atomic.Pointer[snapshot]

	wmu sync.Mutex // serialises writers; guards ex
	ex  *exchange

	hookMu   sync.Mutex
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
	s := emptySnapshot(state{})
	err := m.cat.Update(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(storage.BucketPairing).Get(keyState); v != nil {
			if err := json.Unmarshal(v, &s.st); err != nil {
				return fmt.Errorf("pairing: state: %w", err)
			}
		}
		if len(s.st.Secret) != SecretSize {
			s.st = newState()
			if err := putState(tx, s.st); err != nil {
				return err
			}
		}
		return tx.Bucket(storage.BucketUsers).ForEach(func(k, v []byte) error {
			var u User
			if err := json.Unmarshal(v, &u); err != nil {
				m.log.Warn("pairing: skipping a damaged user record", "id", string(k))
				return nil
			}
			s.index(&u)
			return nil
		})
	})
	if err != nil {
		return err
	}
	m.cur.Store(s)
	return nil
}

func putState(tx *bbolt.Tx, st state) error {
	b, _ := json.Marshal(st)
	return tx.Bucket(storage.BucketPairing).Put(keyState, b)
}

func putUser(tx *bbolt.Tx, u *User) error {
	b, _ := json.Marshal(u)
	return tx.Bucket(storage.BucketUsers).Put([]byte(u.ID), b)
}

// publish commits write and, once it is committed, makes next the
// current snapshot. The caller holds wmu.
func (m *Manager) publish(next *snapshot, write func(tx *bbolt.Tx) error) error {
	if err := m.cat.Update(write); err != nil {
		return err
	}
	m.cur.Store(next)
	return nil
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// OnChange registers f to run (without the manager's lock) after the
// paired state or the discriminator changed.
func (m *Manager) OnChange(f func()) {
	m.hookMu.Lock()
	defer m.hookMu.Unlock()
	m.onChange = append(m.onChange, f)
}

func (m *Manager) changed() {
	m.hookMu.Lock()
	fs := slices.Clone(m.onChange)
	m.hookMu.Unlock()
	for _, f := range fs {
		f()
	}
}

// Paired reports whether any user is paired.
func (m *Manager) Paired() bool { return len(m.cur.Load().users) > 0 }

// Discriminator is the short value, shown in the QR code and announced on
// the LAN, that tells cameras being set up apart. It is not secret.
func (m *Manager) Discriminator() uint16 { return m.cur.Load().st.Discriminator }

// SetupPayload is the device's setup QR payload. It carries the secret: it
// is shown on the device's own terminal, screen or sticker, never served.
func (m *Manager) SetupPayload(host netip.AddrPort) Payload {
	s := m.cur.Load()
	p := Payload{Kind: Setup, Role: Owner, DeviceID: m.deviceID, Fingerprint: m.opts.Fingerprint, Discriminator: s.st.Discriminator, Host: host}
	copy(p.Secret[:], s.st.Secret)
	return p
}

func (m *Manager) locked(s *snapshot) bool {
	return s.st.LifetimeFailures >= m.opts.LifetimeFailures
}

func (m *Manager) windowOpen(s *snapshot, now time.Time) bool {
	if m.locked(s) {
		return false
	}
	if len(s.users) == 0 && s.st.WindowFailures < m.opts.WindowFailures {
		return true
	}
	return now.Before(s.st.WindowUntil)
}

// Window reports whether pairing is open, until when (zero: until paired),
// and whether pairing is locked for good.
func (m *Manager) Window() (open bool, until time.Time, locked bool) {
	s, now := m.cur.Load(), time.Now()
	open = m.windowOpen(s, now)
	if open && now.Before(s.st.WindowUntil) {
		until = s.st.WindowUntil
	}
	return open, until, m.locked(s)
}

// OpenWindow opens pairing for Options.Window (the owner's request, a
// short press of the pair button, or `camd pair-window`).
func (m *Manager) OpenWindow() error {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	s := m.cur.Load()
	if m.locked(s) {
		return ErrLocked
	}
	st := s.st
	st.WindowUntil = time.Now().Add(m.opts.Window)
	st.WindowFailures = 0
	if err := m.publish(s.with(st, nil), func(tx *bbolt.Tx) error { return putState(tx, st) }); err != nil {
		return fmt.Errorf("pairing: opening the window: %w", err)
	}
	m.log.Info("pairing: window open", "until", st.WindowUntil.Format(time.RFC3339))
	return nil
}

// Start begins an exchange and returns its nonce. With an invitation ID
// the window need not be open.
func (m *Manager) Start(inviteID string) ([]byte, error) {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	s, now := m.cur.Load(), time.Now()
	if m.locked(s) {
		return nil, ErrLocked
	}
	if m.ex != nil && now.Before(m.ex.expires) {
		return nil, ErrBusy
	}
	if inviteID != "" {
		if _, err := m.getInvite(inviteID, now); err != nil {
			return nil, err
		}
	} else if !m.windowOpen(s, now) {
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
// device's lifetime. The exchange is used up by a Finish with its nonce,
// whatever the outcome: one proof per nonce.
func (m *Manager) Finish(req FinishRequest) (User, string, error) {
	if !validName(req.Name) {
		return User{}, "", ErrBadName
	}
	u, token, first, err := m.finish(req)
	if err != nil {
		return User{}, "", err
	}
	m.log.Info("pairing: paired", "user", u.ID, "name", u.Name, "role", u.Role, "invited", req.InviteID != "")
	if first {
		m.changed()
	}
	return u, token, nil
}

// finish is Finish under wmu; first reports that the device was unpaired.
func (m *Manager) finish(req FinishRequest) (u User, token string, first bool, err error) {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	s, now, ex := m.cur.Load(), time.Now(), m.ex
	if ex == nil || now.After(ex.expires) || subtle.ConstantTimeCompare(ex.nonce, req.Nonce) != 1 || ex.inviteID != req.InviteID {
		return User{}, "", false, errors.Join(ErrBadNonce, m.fail(s, "unknown exchange"))
	}
	m.ex = nil // one proof per nonce: a replay finds nothing
	secret, role, access := s.st.Secret, Owner, time.Duration(0)
	if req.InviteID != "" {
		inv, err := m.getInvite(req.InviteID, now)
		if err != nil {
			return User{}, "", false, err
		}
		secret, role, access = inv.Secret, inv.Role, inv.Access
	} else if !m.windowOpen(s, now) {
		return User{}, "", false, ErrWindowClosed
	} else if s.hasOwner() {
		role = Viewer
	}
	if !hmac.Equal(Proof(secret, m.opts.DeviceID, ex.nonce, req.Name), req.Proof) {
		return User{}, "", false, errors.Join(ErrBadProof, m.fail(s, "wrong proof"))
	}
	token = "camd1." + m.opts.DeviceID + "." + base64.RawURLEncoding.EncodeToString(random(32))
	h := sha256.Sum256([]byte(token))
	nu := &User{ID: hex.EncodeToString(random(8)), Name: req.Name, Role: role, Created: now.UTC(), TokenHash: h[:]}
	if access > 0 {
		nu.Expires = now.Add(access).UTC()
	}
	st := s.st
	if req.InviteID == "" {
		st.Secret = random(SecretSize)
		st.WindowUntil = time.Time{}
	}
	st.WindowFailures = 0
	err = m.publish(s.with(st, []*User{nu}), func(tx *bbolt.Tx) error {
		if req.InviteID != "" {
			if err := tx.Bucket(storage.BucketPairing).Delete([]byte(invitePrefix + req.InviteID)); err != nil {
				return err
			}
		}
		if err := putState(tx, st); err != nil {
			return err
		}
		return putUser(tx, nu)
	})
	if err != nil {
		return User{}, "", false, fmt.Errorf("pairing: saving the new user: %w", err)
	}
	return *nu, token, len(s.users) == 0, nil
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

// fail counts a failed attempt in s; the caller holds wmu. It returns an
// error that says what the failure changed, if anything, or that it
// could not be saved (then nothing changed).
func (m *Manager) fail(s *snapshot, why string) error {
	st := s.st
	st.WindowFailures++
	st.LifetimeFailures++
	var result error
	switch {
	case st.LifetimeFailures >= m.opts.LifetimeFailures:
		result = ErrLocked
	case st.WindowFailures >= m.opts.WindowFailures:
		st.WindowUntil = time.Time{}
		result = ErrWindowClosed
	}
	if err := m.publish(s.with(st, nil), func(tx *bbolt.Tx) error { return putState(tx, st) }); err != nil {
		m.log.Error("pairing: attempt failed; cannot save failure counters", "why", why, "err", err)
		return fmt.Errorf("pairing: saving failure counters: %w", err)
	}
	m.log.Warn("pairing: attempt failed", "why", why, "window_failures", st.WindowFailures, "lifetime_failures", st.LifetimeFailures, "result", result)
	return result
}

// Failures returns the failure counters: this window's and the lifetime's.
func (m *Manager) Failures() (window, lifetime int) {
	st := m.cur.Load().st
	return st.WindowFailures, st.LifetimeFailures
}

// Authenticate returns the user a credential belongs to. It never waits
// for a write to the catalog.
func (m *Manager) Authenticate(token string) (User, error) {
	if token == "" {
		return User{}, ErrNoCredential
	}
	if dev, _, ok := strings.Cut(strings.TrimPrefix(token, "camd1."), "."); !strings.HasPrefix(token, "camd1.") || !ok {
		return User{}, ErrUnknownCredential
	} else if dev != m.opts.DeviceID {
		return User{}, ErrOtherDevice
	}
	u := m.cur.Load().byToken[sha256.Sum256([]byte(token))]
	if u == nil {
		return User{}, ErrUnknownCredential
	}
	if !u.Expires.IsZero() && !time.Now().Before(u.Expires) {
		return User{}, ErrExpired
	}
	return *u, nil
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
	inv := invite{Secret: secret, Role: opts.Role, Expires: time.Now().Add(opts.Valid).UTC(), By: opts.By, Access: opts.Access}
	b, _ := json.Marshal(inv)
	m.wmu.Lock()
	defer m.wmu.Unlock()
	if err := m.cat.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(storage.BucketPairing).Put([]byte(invitePrefix+InviteID(secret)), b)
	}); err != nil {
		return Payload{}, fmt.Errorf("pairing: saving invitation: %w", err)
	}
	p := Payload{Kind: Invite, Role: opts.Role, DeviceID: m.deviceID, Fingerprint: m.opts.Fingerprint, Discriminator: m.cur.Load().st.Discriminator, Host: host}
	copy(p.Secret[:], secret)
	return p, nil
}

// getInvite reads an invitation that is still valid at now.
func (m *Manager) getInvite(id string, now time.Time) (invite, error) {
	var inv invite
	var found bool
	m.cat.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(storage.BucketPairing).Get([]byte(invitePrefix + id)); v != nil {
			found = json.Unmarshal(v, &inv) == nil
		}
		return nil
	})
	if !found || !now.Before(inv.Expires) {
		return inv, ErrBadInvite
	}
	return inv, nil
}

// Users lists the paired users, oldest first, without credentials.
func (m *Manager) Users() []User {
	var us []User
	for _, u := range m.cur.Load().users {
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
	m.wmu.Lock()
	defer m.wmu.Unlock()
	s := m.cur.Load()
	u := s.users[id]
	if u == nil {
		return ErrNoUser
	}
	c := *u
	c.Name = name
	if err := m.publish(s.with(s.st, []*User{&c}), func(tx *bbolt.Tx) error { return putUser(tx, &c) }); err != nil {
		return fmt.Errorf("pairing: %w", err)
	}
	return nil
}

// Revoke removes a user; its credential stops working at once. Removing
// the last owner removes every user and reopens pairing.
func (m *Manager) Revoke(id string) error {
	lastOwner, err := m.revoke(id)
	if err != nil {
		return err
	}
	m.log.Info("pairing: user revoked", "user", id, "all_users_removed", lastOwner)
	if lastOwner {
		m.changed()
	}
	return nil
}

func (m *Manager) revoke(id string) (lastOwner bool, err error) {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	s := m.cur.Load()
	u := s.users[id]
	if u == nil {
		return false, ErrNoUser
	}
	lastOwner = u.Role == Owner
	for _, o := range s.users {
		if o.ID != id && o.Role == Owner {
			lastOwner = false
		}
	}
	gone := []string{id}
	st := s.st
	if lastOwner {
		gone = slices.Collect(maps.Keys(s.users))
		st.WindowFailures = 0
	}
	err = m.publish(s.with(st, nil, gone...), func(tx *bbolt.Tx) error {
		for _, g := range gone {
			if err := tx.Bucket(storage.BucketUsers).Delete([]byte(g)); err != nil {
				return err
			}
		}
		if lastOwner {
			return putState(tx, st)
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("pairing: %w", err)
	}
	return lastOwner, nil
}

// Reset forgets every user, invitation and counter and makes a new secret
// and discriminator: part of a factory reset.
func (m *Manager) Reset() error {
	if err := m.reset(); err != nil {
		return fmt.Errorf("pairing: reset: %w", err)
	}
	m.changed()
	return nil
}

func (m *Manager) reset() error {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	st := newState()
	err := m.publish(emptySnapshot(st), func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{storage.BucketUsers, storage.BucketPairing} {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		return putState(tx, st)
	})
	if err == nil {
		m.ex = nil
	}
	return err
}
