package pairing

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"go.etcd.io/bbolt"

	"github.com/camd-project/camd/internal/fielderr"
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
	ErrLocked       = errors.New("pairing: locked after too many failed attempts; factory reset to pair with the setup code again")
	ErrBadNonce     = errors.New("pairing: unknown, used or expired pairing exchange")
	ErrBadProof     = errors.New("pairing: wrong pairing code")
	ErrBadInvite    = errors.New("pairing: unknown, used, cancelled or expired invitation")
	ErrNoInvite     = errors.New("pairing: no such invitation")
	// ErrInvalid and ErrBadName (which is ErrInvalid too) are the kinds of
	// a *fielderr.Error.
	ErrInvalid = errors.New("pairing: value not allowed")
	ErrBadName = fmt.Errorf("pairing: name not allowed: %w", ErrInvalid)

	ErrNoCredential      = errors.New("pairing: no credential")
	ErrUnknownCredential = errors.New("pairing: unknown or revoked credential")
	ErrOtherDevice       = errors.New("pairing: credential belongs to another device")
	ErrExpired           = errors.New("pairing: credential expired")
	ErrNoUser            = errors.New("pairing: no such user")
)

// invalid is a value that is not allowed: which field, the value given
// (quoted, with anything but printable ASCII escaped) and what is
// allowed; a *fielderr.Error of kind (ErrInvalid, or ErrBadName for a
// name).
func invalid(field, value, allowed string, kind error) error {
	return &fielderr.Error{Scope: "pairing", Field: field, Value: value, Allowed: allowed, Kind: kind}
}

// NameRule is what a user's name may be.
const NameRule = "1 to 64 bytes of UTF-8 text without control or format characters (Unicode Cc, Cf: no bidi overrides)"

// CheckName returns a *fielderr.Error if name is not allowed (NameRule).
func CheckName(name string) error {
	if name != "" && len(name) <= 64 && utf8.ValidString(name) && !strings.ContainsFunc(name, forbiddenInName) {
		return nil
	}
	v := name
	if len(v) > 80 {
		v = v[:80] + "..."
	}
	return invalid("name", strconv.QuoteToASCII(v), NameRule, ErrBadName)
}

// forbiddenInName: control characters (C0, DEL, C1) and format
// characters (bidi overrides and isolates, zero-width characters, tags),
// which could make a name show as another or act on a terminal.
func forbiddenInName(r rune) bool { return unicode.In(r, unicode.Cc, unicode.Cf) }

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
	// pairing with the setup code until factory reset (default 100).
	// Invitations work while it is locked.
	WindowFailures, LifetimeFailures int
	// ExchangeTimeout is how long a nonce from Start stays valid
	// (default 30 s).
	ExchangeTimeout time.Duration
	// FailureDelay is how long an address waits after its first failed
	// attempt (default 1 s); each further failure doubles it, up to
	// MaxFailureDelay (default 5 min). The delays are kept in memory for
	// at most FailureAddresses addresses (default 1024).
	FailureDelay, MaxFailureDelay time.Duration
	FailureAddresses              int
	// StreamKeyRoot derives the secrets of stream keys (keys.go); it is
	// kept outside the catalog. Nil: a random root for this run only (the
	// keys stop working when the Manager is opened again).
	StreamKeyRoot []byte
	Logger        *slog.Logger
	// Notify, if set, is told of each change of who may use the camera
	// once it is stored: users paired, renamed and revoked, invitations
	// made and cancelled (the event log).
	Notify func(Event)
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
	// Key is set when the credential was the stream key of that ID:
	// then ID is KeySubject(Key) and Role Viewer, and the credential
	// opens only live view (ErrKeyScope elsewhere).
	Key string `json:"key,omitempty"`
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

// snapshot is the pairing state and the users as the catalog holds them
// at one moment, and the key that seals nonces (in memory only; a reset
// makes a new one). A published snapshot is never changed, nor are the
// Users it points to: a writer publishes a new one.
type snapshot struct {
	st       state
	users    map[string]*User
	byToken  map[[sha256.Size]byte]*User
	keys     map[string]*keyRecord // stream keys by ID
	nonceKey []byte
}

func emptySnapshot(st state, nonceKey []byte) *snapshot {
	return &snapshot{st: st, users: map[string]*User{}, byToken: map[[sha256.Size]byte]*User{}, keys: map[string]*keyRecord{}, nonceKey: nonceKey}
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
// removed and the users put added (replacing those of the same ID). The
// stream keys of the users dropped go with them.
func (s *snapshot) with(st state, put []*User, drop ...string) *snapshot {
	if len(put) == 0 && len(drop) == 0 {
		return &snapshot{st: st, users: s.users, byToken: s.byToken, keys: s.keys, nonceKey: s.nonceKey}
	}
	n := emptySnapshot(st, s.nonceKey)
	n.keys = cloneKeys(s.keys)
	for _, id := range keysOf(s.keys, drop) {
		delete(n.keys, id)
	}
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
//
// Start, and Finish with no live exchange, neither write nor wait for
// wmu: what a stranger can send without a nonce costs an HMAC.
type Manager struct {
	cat      *storage.Catalog
	opts     Options
	deviceID [DeviceIDSize]byte
	log      *slog.Logger
	throttle *throttle

	cur     atomic.Pointer[snapshot]
	keyRoot []byte

	wmu  sync.Mutex // serialises writers; guards used
	used usedNonces

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
	if opts.FailureDelay <= 0 {
		opts.FailureDelay = time.Second
	}
	if opts.MaxFailureDelay <= 0 {
		opts.MaxFailureDelay = 5 * time.Minute
	}
	if opts.FailureAddresses <= 0 {
		opts.FailureAddresses = 1024
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{cat: cat, opts: opts, deviceID: id, log: opts.Logger, used: usedNonces{},
		throttle: newThrottle(opts.FailureDelay, opts.MaxFailureDelay, opts.FailureAddresses),
		keyRoot:  opts.StreamKeyRoot}
	if len(m.keyRoot) == 0 {
		m.keyRoot = random(32)
	}
	if err := m.load(); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Manager) load() error {
	s := emptySnapshot(state{}, random(nonceKeySize))
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
		loadKeys(tx, s.keys)
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

// notify tells Options.Notify of e, without the user's credential.
func (m *Manager) notify(e Event) {
	if m.opts.Notify != nil {
		e.User = withoutCredential(e.User)
		m.opts.Notify(e)
	}
}

func withoutCredential(u User) User {
	u.TokenHash = nil
	return u
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

// Window reports whether pairing with the setup code is open, until when
// (zero: until paired), and whether it is locked for good.
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

// Start begins an exchange for the client at from and returns its
// nonce, valid for Options.ExchangeTimeout and only for that address and
// invitation. With an invitation ID the window need not be open, nor
// setup pairing unlocked. Exchanges do not exclude each other, and Start
// keeps and writes nothing: a stranger starting exchanges over and over
// holds nothing the owner needs.
//
// Errors: *RetryError (ErrRetryLater) while from waits after failed
// attempts, ErrLocked, ErrWindowClosed, ErrBadInvite.
func (m *Manager) Start(inviteID string, from netip.Addr) ([]byte, error) {
	s, now := m.cur.Load(), time.Now()
	if wait := m.throttle.wait(from, now); wait > 0 {
		return nil, &RetryError{After: wait}
	}
	if inviteID != "" {
		if _, err := m.getInvite(s, inviteID, now); err != nil {
			return nil, err
		}
	} else if m.locked(s) {
		return nil, ErrLocked
	} else if !m.windowOpen(s, now) {
		return nil, ErrWindowClosed
	}
	return mintNonce(s.nonceKey, from, inviteID, now.Add(m.opts.ExchangeTimeout)), nil
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
	// From is the client's address, as for Start: a nonce works only
	// from the address it was given to.
	From netip.Addr
}

// Finish checks the proof and, if it holds, adds the user and returns it
// with its credential.
//
// Only a wrong proof inside a live exchange (a nonce that Start gave to
// this address for this invitation, not expired and not used) is a
// failure: it is counted against the window and the device's lifetime,
// and delays the address's next attempt. A request without a live
// exchange is refused with ErrBadNonce, counts against nothing, and
// neither writes nor waits for a write. A nonce serves one proof.
//
// Errors: *fielderr.Error (ErrBadName) for the name, *RetryError
// (ErrRetryLater), ErrBadNonce, ErrBadInvite, ErrLocked, ErrWindowClosed,
// ErrBadProof (joined with ErrWindowClosed or ErrLocked when this failure
// closed the window or locked setup pairing).
func (m *Manager) Finish(req FinishRequest) (User, string, error) {
	if err := CheckName(req.Name); err != nil {
		return User{}, "", err
	}
	now := time.Now()
	if wait := m.throttle.wait(req.From, now); wait > 0 {
		return User{}, "", &RetryError{After: wait}
	}
	if _, _, ok := checkNonce(m.cur.Load().nonceKey, req.Nonce, req.From, req.InviteID, now); !ok {
		return User{}, "", ErrBadNonce
	}
	u, token, first, by, err := m.finish(req, now)
	if err != nil {
		return User{}, "", err
	}
	m.log.Info("pairing: paired", "user", u.ID, "name", u.Name, "role", u.Role, "invited", req.InviteID != "")
	m.notify(Event{Kind: EventPaired, User: u, Invitation: req.InviteID, By: by})
	if first {
		m.changed()
	}
	return u, token, nil
}

// finish is Finish under wmu, for a request whose nonce looked live;
// first reports that the device was unpaired, by who made the invitation
// used.
func (m *Manager) finish(req FinishRequest, now time.Time) (u User, token string, first bool, by string, err error) {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	s := m.cur.Load()
	// Checked again: a reset since makes a new key.
	tag, expires, ok := checkNonce(s.nonceKey, req.Nonce, req.From, req.InviteID, now)
	if _, used := m.used[tag]; !ok || used {
		return User{}, "", false, "", ErrBadNonce
	}
	secret, role, access := s.st.Secret, Owner, time.Duration(0)
	if req.InviteID != "" {
		inv, err := m.getInvite(s, req.InviteID, now)
		if err != nil {
			return User{}, "", false, "", err
		}
		secret, role, access, by = inv.Secret, inv.Role, inv.Access, inv.By
	} else if m.locked(s) {
		return User{}, "", false, "", ErrLocked
	} else if !m.windowOpen(s, now) {
		return User{}, "", false, "", ErrWindowClosed
	} else if s.hasOwner() {
		role = Viewer
	}
	m.used.use(tag, expires, now) // one proof per nonce: a replay finds nothing
	if !hmac.Equal(Proof(secret, m.opts.DeviceID, req.Nonce, req.Name), req.Proof) {
		delay := m.throttle.failed(req.From, now)
		return User{}, "", false, "", errors.Join(ErrBadProof, m.fail(s, req.From, delay))
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
		return User{}, "", false, "", fmt.Errorf("pairing: saving the new user: %w", err)
	}
	return *nu, token, len(s.users) == 0, by, nil
}

// fail counts a wrong proof from the address from in s; the caller holds
// wmu. It returns an error that says what the failure changed, if
// anything, or that it could not be saved (then nothing changed but the
// address's delay, which is in memory).
func (m *Manager) fail(s *snapshot, from netip.Addr, delay time.Duration) error {
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
		m.log.Error("pairing: wrong proof; cannot save failure counters", "from", from, "err", err)
		return fmt.Errorf("pairing: saving failure counters: %w", err)
	}
	m.log.Warn("pairing: wrong proof", "from", from, "delay", delay, "window_failures", st.WindowFailures, "lifetime_failures", st.LifetimeFailures, "result", result)
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
	if strings.HasPrefix(token, tokenPrefix) {
		return m.authenticateKeyToken(token)
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
	if err := CheckName(name); err != nil {
		return err
	}
	old, renamed, err := m.rename(id, name)
	if err != nil {
		return err
	}
	m.notify(Event{Kind: EventRenamed, User: renamed, OldName: old})
	return nil
}

// rename is Rename under wmu: it returns the old name and the user.
func (m *Manager) rename(id, name string) (string, User, error) {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	s := m.cur.Load()
	u := s.users[id]
	if u == nil {
		return "", User{}, ErrNoUser
	}
	c := *u
	c.Name = name
	if err := m.publish(s.with(s.st, []*User{&c}), func(tx *bbolt.Tx) error { return putUser(tx, &c) }); err != nil {
		return "", User{}, fmt.Errorf("pairing: %w", err)
	}
	return u.Name, c, nil
}

// Revoke removes a user; its credential stops working at once, and the
// invitations it made die with it. Removing the last owner removes every
// user and every invitation, and reopens pairing.
func (m *Manager) Revoke(id string) error {
	gone, lastOwner, err := m.revoke(id)
	if err != nil {
		return err
	}
	m.log.Info("pairing: user revoked", "user", id, "all_users_removed", lastOwner)
	for _, u := range gone {
		e := Event{Kind: EventRevoked, User: u}
		if u.ID != id {
			e.Reason = "the last owner was revoked"
		}
		m.notify(e)
	}
	if lastOwner {
		m.changed()
	}
	return nil
}

// revoke is Revoke under wmu: it returns the users removed, id first.
func (m *Manager) revoke(id string) (removed []User, lastOwner bool, err error) {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	s := m.cur.Load()
	u := s.users[id]
	if u == nil {
		return nil, false, ErrNoUser
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
	next := s.with(st, nil, gone...)
	deadKeys := keysOf(s.keys, gone)
	if lastOwner {
		deadKeys = slices.Collect(maps.Keys(s.keys))
		next.keys = map[string]*keyRecord{}
	}
	err = m.publish(next, func(tx *bbolt.Tx) error {
		for _, g := range gone {
			if err := tx.Bucket(storage.BucketUsers).Delete([]byte(g)); err != nil {
				return err
			}
		}
		dead := invitationKeys(tx, func(_ string, inv *invite) bool { return lastOwner || inv.By == id })
		for _, k := range deadKeys {
			dead = append(dead, []byte(keyPrefix+k))
		}
		if err := deleteKeys(tx, dead); err != nil {
			return err
		}
		if lastOwner {
			return putState(tx, st)
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("pairing: %w", err)
	}
	removed = []User{withoutCredential(*u)}
	for _, g := range gone {
		if g != id {
			removed = append(removed, withoutCredential(*s.users[g]))
		}
	}
	return removed, lastOwner, nil
}

// Reset forgets every user, invitation, counter, exchange and delay and
// makes a new secret and discriminator: part of a factory reset.
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
	err := m.publish(emptySnapshot(st, random(nonceKeySize)), func(tx *bbolt.Tx) error {
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
		clear(m.used)
		m.throttle.reset()
	}
	return err
}

// Kinds of Event, as the event log names them.
const (
	EventPaired              = "user.paired"
	EventRenamed             = "user.renamed"
	EventRevoked             = "user.revoked"
	EventInvited             = "invitation.made"
	EventInvitationCancelled = "invitation.cancelled"
)

// Event is a change of who may use the camera, told to Options.Notify
// once it is stored, outside the manager's locks.
type Event struct {
	Kind string
	// User is the user paired, renamed or revoked, without its
	// credential; OldName a renamed user's name before.
	User    User
	OldName string
	// Reason says why a user was revoked with another (the last owner).
	Reason string
	// Invitation is the invitation made, cancelled, or used to pair; Role
	// and Expires are the invitation's.
	Invitation string
	Role       Role
	Expires    time.Time
	// By is the owner who made the invitation (made, cancelled, or used
	// to pair), "" for pairing with the setup code.
	By string
}
