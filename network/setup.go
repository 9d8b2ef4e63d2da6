package network

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/camd-project/camd/internal/durable"
)

// SetupAP is the setup mode's access point: WPA2 with a passphrase
// derived from the pairing setup secret, so that only someone who
// scanned the camera's setup code can join it.
type SetupAP struct {
	SSID       string
	Passphrase string
}

// String hides the passphrase.
func (a SetupAP) String() string { return fmt.Sprintf("{SSID:%q Passphrase:[hidden]}", a.SSID) }

// LogValue hides the passphrase from slog.
func (a SetupAP) LogValue() slog.Value { return slog.StringValue(a.SSID) }

// SetupNetwork derives the setup access point from the setup secret
// (HKDF-SHA256, docs/network.md "Setup mode"): the SSID "camd-setup-"
// and 4 hex digits, and a passphrase of 20 base32 characters (100 bits,
// beyond an offline guess at a captured handshake). The phone computes
// the same from the QR code.
func SetupNetwork(secret []byte) SetupAP {
	derive := func(info string, n int) []byte {
		b, err := hkdf.Key(sha256.New, secret, []byte("camd wifi setup v1"), info, n)
		if err != nil {
			panic(err) // n is far below HKDF-SHA256's limit
		}
		return b
	}
	pass := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(derive("passphrase", 13))[:20]
	return SetupAP{
		SSID:       "camd-setup-" + hex.EncodeToString(derive("ssid", 2)),
		Passphrase: strings.ToLower(pass),
	}
}

// accessPoint serves the setup mode's access point and a DHCP server for
// the phone (*Hostapd).
type accessPoint interface {
	Start(ctx context.Context, ap SetupAP) error
	Stop() error
}

// SetupOptions configure Setup. Link and AP are required.
type SetupOptions struct {
	Link Link
	AP   accessPoint
	// Secret is the pairing setup secret now.
	Secret func() []byte
	// Keep is a file (0600) that holds the access point (SSID and
	// passphrase, not the secret) while setup mode lasts, so that a restart before the camera joined
	// a network opens the same access point: the phone that paired on
	// it, whose setup code pairing replaced, comes back to it. Removed
	// when the camera joins a network or boots with one saved. "": kept
	// in memory only.
	Keep string
	// Events receives setup mode's events and the joins' (nil: none),
	// in the order of the changes, while the change holds Setup: it must
	// not call Setup's Enter, Join or Close.
	Events func(Event)
	Logger *slog.Logger
}

// Setup is a Link with a setup mode: when the camera has no network it
// can join (first boot, or the owner asking), it serves an access point
// that the phone joins to pair and send the home network. Joining a
// network closes the access point first (one radio); if the join fails
// the access point opens again. Setup passes everything else to its Link.
type Setup struct {
	opts SetupOptions
	log  *slog.Logger

	modeMu sync.Mutex // held by Enter, Join and Close: one at a time

	mu     sync.Mutex // the fields below, read while a join runs
	closed bool
	active bool
	ap     SetupAP
	reason string
	last   *JoinResult
	// scanned is the scan taken before the access point opened: the
	// radio serving it cannot scan as a station.
	scanned []Network
}

// JoinResult is how the last join ended: in setup mode the phone that
// asked is cut off by the join (one radio), and reads it once back on
// the access point, or on the new network.
type JoinResult struct {
	SSID string    `json:"ssid"`
	At   time.Time `json:"at"`
	// Error and Reason (as network.Reason) say why it failed; empty
	// when it joined.
	Error  string `json:"error,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// LastJoin is how the last join ended (nil before the first).
func (s *Setup) LastJoin() *JoinResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		return nil
	}
	r := *s.last
	return &r
}

var _ Link = (*Setup)(nil)

// NewSetup wraps opts.Link with the setup mode.
func NewSetup(opts SetupOptions) *Setup {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Events == nil {
		opts.Events = func(Event) {}
	}
	return &Setup{opts: opts, log: opts.Logger}
}

// ErrNoSetupSecret: there is no setup secret to derive the access point
// from.
var ErrNoSetupSecret = errors.New("network: no setup secret")

// Boot enters setup mode when no network is saved (the first boot).
func (s *Setup) Boot(ctx context.Context) error {
	st, err := s.opts.Link.Status(ctx)
	if err != nil {
		return err
	}
	if st.Saved {
		s.forgetKept()
		return nil
	}
	return s.Enter(ctx, "no network saved")
}

// Enter opens the access point (the reason is logged); already in setup
// mode, it does nothing.
func (s *Setup) Enter(ctx context.Context, reason string) error {
	s.modeMu.Lock()
	defer s.modeMu.Unlock()
	s.mu.Lock()
	active, closed := s.active, s.closed
	s.mu.Unlock()
	if active || closed {
		return nil
	}
	ap, ok := s.kept()
	if !ok {
		secret := s.opts.Secret()
		if len(secret) == 0 {
			return ErrNoSetupSecret
		}
		ap = SetupNetwork(secret)
		if s.opts.Keep != "" {
			b, _ := json.Marshal(keptAP(ap))
			if err := durable.WriteFile(s.opts.Keep, b, 0o600); err != nil {
				s.log.Warn("network: setup mode: the access point is not kept across a restart", "err", err)
			}
		}
	}
	scanned, err := s.opts.Link.Scan(ctx)
	if err != nil {
		s.log.Warn("network: setup mode: no scan for the phone", "err", err)
	}
	if err := s.opts.AP.Start(ctx, ap); err != nil {
		return err
	}
	s.mu.Lock()
	s.scanned = scanned
	s.active, s.ap, s.reason = true, ap, reason
	s.mu.Unlock()
	s.log.Info("network: setup mode: access point open", "ssid", ap.SSID, "why", reason)
	s.opts.Events(Event{Kind: EventSetupEntered, SSID: ap.SSID, Security: PSK, Reason: reason})
	return nil
}

// keptAP is the Keep file: the access point of a setup mode under way
// (not the secret it was derived from).
type keptAP struct {
	SSID       string `json:"ssid"`
	Passphrase string `json:"passphrase"`
}

// kept is the access point of a setup mode that a restart interrupted.
func (s *Setup) kept() (SetupAP, bool) {
	if s.opts.Keep == "" {
		return SetupAP{}, false
	}
	b, err := os.ReadFile(s.opts.Keep)
	if err != nil {
		return SetupAP{}, false
	}
	var k keptAP
	if json.Unmarshal(b, &k) != nil || k.SSID == "" || len(k.Passphrase) < 8 {
		s.log.Warn("network: setup mode: the kept access point is damaged; deriving it from the setup secret", "file", s.opts.Keep)
		return SetupAP{}, false
	}
	return SetupAP(k), true
}

// forgetKept removes the kept access point: setup is over.
func (s *Setup) forgetKept() {
	if s.opts.Keep == "" {
		return
	}
	if err := os.Remove(s.opts.Keep); err == nil {
		durable.SyncDir(filepath.Dir(s.opts.Keep))
	} else if !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("network: setup mode: cannot remove the kept access point", "err", err)
	}
}

// AccessPoint is the access point setup mode has open, or opens next:
// the one kept from a setup mode under way, else the one derived from
// the setup secret now. Once pairing replaced the secret in the setup
// code, the owner's phone learns it here (GET
// /api/v1/network/wifi/setup) to find the camera in setup mode again.
func (s *Setup) AccessPoint() (SetupAP, error) {
	s.mu.Lock()
	active, ap := s.active, s.ap
	s.mu.Unlock()
	if active {
		return ap, nil
	}
	if ap, ok := s.kept(); ok {
		return ap, nil
	}
	secret := s.opts.Secret()
	if len(secret) == 0 {
		return SetupAP{}, ErrNoSetupSecret
	}
	return SetupNetwork(secret), nil
}

// Active says whether the access point is open.
func (s *Setup) Active() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

// leave closes the access point; s.modeMu is held.
func (s *Setup) leave() error {
	s.mu.Lock()
	active, ap := s.active, s.ap
	s.active = false
	s.mu.Unlock()
	if !active {
		return nil
	}
	s.log.Info("network: setup mode: access point closed", "ssid", ap.SSID)
	return s.opts.AP.Stop()
}

// Close closes the access point, waiting for a join under way; it is
// safe twice.
func (s *Setup) Close() error {
	s.modeMu.Lock()
	defer s.modeMu.Unlock()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return s.leave()
}

// Join closes the access point, if open, and joins; when the join fails
// the access point opens again, and the error says why. Status, Scan and
// LastJoin answer meanwhile; one join or mode change runs at a time.
func (s *Setup) Join(ctx context.Context, c Credentials) (Status, error) {
	checked, err := c.Check()
	if err != nil {
		return Status{}, err
	}
	s.modeMu.Lock()
	defer s.modeMu.Unlock()
	s.mu.Lock()
	wasActive, ap := s.active, s.ap
	s.mu.Unlock()
	if err := s.leave(); err != nil {
		s.log.Warn("network: setup mode: closing the access point", "err", err)
	}
	s.log.Info("network: joining", "wifi", c)
	st, err := s.opts.Link.Join(ctx, c)
	last := &JoinResult{SSID: c.SSID, At: time.Now()}
	if err != nil {
		s.log.Info("network: join failed; the old network stays", "wifi", c, "why", err)
		last.Error, last.Reason = err.Error(), Reason(err)
	} else {
		s.log.Info("network: joined", "wifi", c, "address", st.Address)
	}
	s.mu.Lock()
	s.last = last
	closed := s.closed
	s.mu.Unlock()
	if err == nil {
		// Setup is over: the next setup mode derives its access point
		// from the secret then (a pairing since replaced the one in the
		// setup code, which opens it no more).
		s.forgetKept()
		s.opts.Events(Event{Kind: EventJoined, SSID: st.SSID, Security: st.Security, Address: st.Address})
		if wasActive {
			s.opts.Events(Event{Kind: EventSetupLeft, SSID: st.SSID})
		}
		return st, nil
	}
	s.opts.Events(Event{Kind: EventJoinFailed, SSID: c.SSID, Security: checked.Security, Reason: last.Reason, Error: last.Error})
	if wasActive && !closed {
		if e := s.opts.AP.Start(context.WithoutCancel(ctx), ap); e != nil {
			s.log.Error("network: setup mode: could not open the access point again", "err", e)
			s.opts.Events(Event{Kind: EventSetupLeft, Error: "the access point could not open again: " + e.Error()})
		} else {
			s.mu.Lock()
			s.active = true
			s.mu.Unlock()
		}
	}
	return st, err
}

// Scan lists the networks in range. In setup mode the radio serves the
// access point, and the list is the one taken just before it opened.
func (s *Setup) Scan(ctx context.Context) ([]Network, error) {
	s.mu.Lock()
	active, scanned := s.active, s.scanned
	s.mu.Unlock()
	if active && scanned != nil {
		return scanned, nil
	}
	return s.opts.Link.Scan(ctx)
}

// Status is the link's; in setup mode, the access point.
func (s *Setup) Status(ctx context.Context) (Status, error) {
	s.mu.Lock()
	active, ap := s.active, s.ap
	s.mu.Unlock()
	st, err := s.opts.Link.Status(ctx)
	if err != nil || !active {
		return st, err
	}
	return Status{State: AccessPoint, SSID: ap.SSID, Security: PSK, Saved: st.Saved}, nil
}

// Forget forgets the saved network (setup mode is entered by the caller
// if it wants the camera reachable again).
func (s *Setup) Forget(ctx context.Context) error { return s.opts.Link.Forget(ctx) }
