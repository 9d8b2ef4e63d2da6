package update

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"aead.dev/minisign"

	"github.com/camd-project/camd/storage/eventlog"
)

// Event kinds the updater publishes.
const (
	// EventAvailable: a check found a newer version (data: version,
	// size, notes).
	EventAvailable = "update.available"
	// EventRefused: a feed or an image was refused (data: reason, one
	// of Reason's names).
	EventRefused = "update.refused"
	// EventFailed: a download, the installer or a hook failed.
	EventFailed = "update.failed"
	// EventRebooting: the image is installed in the other slot; the
	// device reboots into it.
	EventRebooting = "update.rebooting"
	// EventInstalled: the new version passed its health check and its
	// slot is marked good.
	EventInstalled = "update.installed"
	// EventRolledBack: the new version did not pass its health check in
	// time (or did not start), and the device went back to the old one.
	EventRolledBack = "update.rolled_back"
)

// eventAdder is where events go (*eventlog.Log today).
type eventAdder interface {
	Add(e eventlog.Event) (uint64, error)
}

// Options configure an Updater. The zero value of a field means its
// default; Dir and Version are required, and FeedURL and Keys for
// checking.
type Options struct {
	// FeedURL is the signed manifest's https URL; its signature is at
	// FeedURL + ".minisig".
	FeedURL string
	// Keys are the trusted minisign keys (TrustedKeys in camd).
	Keys []minisign.PublicKey
	// Product is the product a feed must name (default "camd").
	Product string
	// Version is the version running now.
	Version string
	// Dir holds state.json and the download.
	Dir string
	// Client fetches the feed and the image (default: one with the
	// system's roots).
	Client *http.Client
	// Events receives the update's events; nil: none.
	Events eventAdder
	// InstallCommand installs an image into the other slot and makes it
	// the next boot's (the image's path is appended): RAUC's
	// ["rauc", "install"], SWUpdate's ["swupdate", "-i"], or a script.
	InstallCommand []string
	// MarkGoodCommand marks the running slot good (["rauc", "status",
	// "mark-good"]); RollbackCommand makes the old slot the next boot's
	// again (["rauc", "status", "mark-bad"]). Either may be empty.
	MarkGoodCommand []string
	RollbackCommand []string
	// RebootCommand reboots the device (["reboot"]).
	RebootCommand []string
	// ConfirmTimeout is how long a new version has to pass its health
	// check before it is rolled back (default 10 minutes).
	ConfirmTimeout time.Duration
	// HealthInterval is the pause between health checks (default 5 s).
	HealthInterval time.Duration
	// Healthy is the health check of a new version: media flowing, the
	// API answering. Nil: healthy once running.
	Healthy func(ctx context.Context) error
	// Interval is the time between checks (default 24 h), plus a random
	// delay up to Jitter (default 1 h), which also delays the first.
	Interval, Jitter time.Duration
	Logger           *slog.Logger
}

// Updater checks the feed, applies updates on request and confirms or
// rolls back a new version after its reboot.
type Updater struct {
	opts Options

	check sync.Mutex // one check at a time
	mu    sync.Mutex // guards what follows
	st    state
	on    bool
	phase string
	done  int64 // download progress
	total int64
	err   string
	next  time.Time

	wake  chan struct{}
	apply chan Manifest
}

// Phases of Status.State.
const (
	Idle        = "idle"
	Downloading = "downloading"
	Installing  = "installing"
	Rebooting   = "rebooting"
	Confirming  = "confirming"
)

// Status is what GET /api/v1/update answers.
type Status struct {
	// Enabled says whether checking is on (the owner's update_check).
	Enabled bool `json:"enabled"`
	// Version is the version running.
	Version string `json:"version"`
	// State is idle, downloading, installing, rebooting or confirming.
	State string `json:"state"`
	// Available is the update offered by the last check.
	Available *Offer `json:"available,omitempty"`
	// Progress is the download's while one runs or was cut short.
	Progress *Progress `json:"progress,omitempty"`
	// Pending is an installed update waiting for its health check.
	Pending   *Pending  `json:"pending,omitempty"`
	LastCheck time.Time `json:"last_check,omitzero"`
	NextCheck time.Time `json:"next_check,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	// RolledBack is the last version that was rolled back.
	RolledBack string `json:"rolled_back,omitempty"`
}

// Offer is an update the owner may apply.
type Offer struct {
	Version string    `json:"version"`
	Notes   string    `json:"notes,omitempty"`
	Size    int64     `json:"size"`
	Expires time.Time `json:"expires"`
}

// Progress counts a download's bytes.
type Progress struct {
	Done  int64 `json:"done"`
	Total int64 `json:"total"`
}

// New returns an updater with the state kept in opts.Dir. Checking is
// off until SetEnabled(true).
func New(opts Options) (*Updater, error) {
	if opts.Dir == "" {
		return nil, errors.New("update: no directory")
	}
	if opts.Product == "" {
		opts.Product = "camd"
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, TLSHandshakeTimeout: 20 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second, ForceAttemptHTTP2: true,
		}}
	}
	if opts.ConfirmTimeout <= 0 {
		opts.ConfirmTimeout = 10 * time.Minute
	}
	if opts.HealthInterval <= 0 {
		opts.HealthInterval = 5 * time.Second
	}
	if opts.Interval <= 0 {
		opts.Interval = 24 * time.Hour
	}
	if opts.Jitter <= 0 {
		opts.Jitter = time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	st, err := loadState(opts.Dir)
	if errors.Is(err, errBadState) {
		// Not worth a camera that does not start: begin again (the
		// signature and the expiry still hold; the serial seen is lost).
		bad := filepath.Join(opts.Dir, stateFile+".bad")
		opts.Logger.Warn("update: state damaged; moved aside", "err", err, "moved_to", bad)
		os.Rename(filepath.Join(opts.Dir, stateFile), bad)
		st, err = state{}, nil
	}
	if err != nil {
		return nil, err
	}
	return &Updater{opts: opts, st: st, phase: Idle, wake: make(chan struct{}, 1), apply: make(chan Manifest, 1)}, nil
}

// SetEnabled turns checking on or off (the owner's update_check
// setting). While it is off nothing is contacted.
func (u *Updater) SetEnabled(on bool) {
	u.mu.Lock()
	if on && !u.on {
		u.next = u.nextCheckLocked()
	}
	u.on = on
	u.mu.Unlock()
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// Status returns the updater's state.
func (u *Updater) Status() Status {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := Status{
		Enabled: u.on, Version: u.opts.Version, State: u.phase, Pending: u.st.Pending,
		LastCheck: u.st.LastCheck, LastError: u.err, RolledBack: u.st.Failed,
	}
	if u.on {
		s.NextCheck = u.next
	}
	if m := u.st.Available; m != nil {
		s.Available = &Offer{Version: m.Version, Notes: m.Notes, Size: m.Image.Size, Expires: m.Expires}
	}
	if u.total > 0 {
		s.Progress = &Progress{Done: u.done, Total: u.total}
	}
	return s
}

// Check fetches and verifies the feed now. A refused feed is an
// update.refused event and one of the refusal errors; a newer version is
// an update.available event (once per version) and Status().Available.
func (u *Updater) Check(ctx context.Context) (Status, error) {
	u.mu.Lock()
	on := u.on
	u.mu.Unlock()
	switch {
	case !on:
		return u.Status(), ErrOff
	case u.opts.FeedURL == "":
		return u.Status(), ErrNoFeed
	case len(u.opts.Keys) == 0:
		return u.Status(), ErrNoKeys
	}
	u.check.Lock()
	defer u.check.Unlock()
	err := u.checkFeed(ctx)
	u.mu.Lock()
	u.st.LastCheck = time.Now()
	u.err = ""
	if err != nil {
		u.err = err.Error()
	}
	u.saveLocked()
	u.mu.Unlock()
	if err != nil {
		u.refused(err, "")
	}
	return u.Status(), err
}

// checkFeed fetches, verifies and records the feed.
func (u *Updater) checkFeed(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	doc, err := u.get(ctx, u.opts.FeedURL)
	if err != nil {
		return err
	}
	sig, err := u.get(ctx, u.opts.FeedURL+".minisig")
	if err != nil {
		return err
	}
	m, err := verifyFeed(doc, sig, u.opts.Keys)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(doc)
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.acceptLocked(m, hex.EncodeToString(sum[:])); err != nil {
		return err
	}
	running := u.opts.Version
	if compareVersions(u.st.Floor, running) > 0 {
		running = u.st.Floor
	}
	switch c := compareVersions(m.Version, running); {
	case c < 0:
		u.st.Available = nil
		return fmt.Errorf("%w: %s offered, %s installed", ErrDowngrade, m.Version, running)
	case c == 0:
		u.st.Available = nil
		return nil
	}
	before := u.st.Available
	u.st.Available = &m
	if before == nil || before.Version != m.Version {
		u.publish(EventAvailable, fmt.Sprintf("update: version %s is available (%d bytes)", m.Version, m.Image.Size),
			map[string]string{"version": m.Version, "size": fmt.Sprint(m.Image.Size), "notes": m.Notes})
	}
	return nil
}

// acceptLocked applies the checks against the feeds seen before and
// records m as the newest: product, expiry, serial.
func (u *Updater) acceptLocked(m Manifest, sum string) error {
	if m.Product != u.opts.Product {
		return fmt.Errorf("%w: %q, this is %q", ErrProduct, m.Product, u.opts.Product)
	}
	if !u.nowLocked().Before(m.Expires) {
		return fmt.Errorf("%w: at %s", ErrExpired, m.Expires.UTC().Format(time.RFC3339))
	}
	switch {
	case m.Serial < u.st.LastSerial:
		return fmt.Errorf("%w: serial %d, seen %d", ErrReplayed, m.Serial, u.st.LastSerial)
	case m.Serial == u.st.LastSerial && u.st.LastSum != "" && sum != u.st.LastSum:
		return fmt.Errorf("%w: serial %d with other content", ErrReplayed, m.Serial)
	}
	u.st.LastSerial, u.st.LastSum = m.Serial, sum
	if m.Issued.After(u.st.LastIssued) {
		u.st.LastIssued = m.Issued
	}
	return nil
}

// nowLocked is the time for expiry checks. The clock may be unset (no
// battery, no NTP yet): it is at least as late as the newest feed
// accepted.
func (u *Updater) nowLocked() time.Time {
	if now := time.Now(); now.After(u.st.LastIssued) {
		return now
	}
	return u.st.LastIssued
}

// get reads a small document.
func (u *Updater) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	resp, err := u.opts.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("update: feed: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("update: feed: %s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxManifest+1))
	if err != nil {
		return nil, fmt.Errorf("update: feed: %w", err)
	}
	if len(b) > maxManifest {
		return nil, fmt.Errorf("%w: %s is over %d bytes", ErrManifest, url, maxManifest)
	}
	return b, nil
}

// Apply starts applying the offered update, which must be version (what
// the owner approved). Run downloads, verifies, installs and reboots;
// Status follows it.
func (u *Updater) Apply(version string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	m := u.st.Available
	switch {
	case u.phase != Idle:
		return ErrBusy
	case m == nil:
		return ErrNoUpdate
	case version != m.Version:
		return fmt.Errorf("%w: %q approved, %q offered", ErrApproval, version, m.Version)
	}
	select {
	case u.apply <- *m:
		u.phase = Downloading
		u.err = ""
		return nil
	default:
		return ErrBusy
	}
}

// Run confirms or rolls back a version installed before the last reboot,
// then checks the feed on schedule while checking is on and applies what
// Apply asks, until ctx ends.
func (u *Updater) Run(ctx context.Context) {
	u.confirm(ctx)
	timer := time.NewTimer(0)
	if !timer.Stop() {
		<-timer.C
	}
	armed := false
	for {
		u.mu.Lock()
		on := u.on
		if on && !armed {
			timer.Reset(time.Until(u.next)) // set when turned on, and after each check
			armed = true
		}
		if !on && armed {
			timer.Stop()
			armed = false
		}
		u.mu.Unlock()
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-u.wake:
		case <-timer.C:
			armed = false
			u.Check(ctx)
			u.mu.Lock()
			u.next = u.nextCheckLocked()
			u.mu.Unlock()
		case m := <-u.apply:
			u.install(ctx, m)
		}
	}
}

// nextCheckLocked is a day after the last check (now if that is past),
// plus jitter, so that cameras do not all ask at once.
func (u *Updater) nextCheckLocked() time.Time {
	t := time.Now()
	if due := u.st.LastCheck.Add(u.opts.Interval); !u.st.LastCheck.IsZero() && due.After(t) {
		t = due
	}
	return t.Add(rand.N(u.opts.Jitter))
}

// install downloads, verifies and installs m, then reboots.
func (u *Updater) install(ctx context.Context, m Manifest) {
	err := u.installImage(ctx, m)
	u.mu.Lock()
	if err != nil {
		u.err = err.Error()
		u.phase = Idle
		if errors.Is(err, ErrHash) {
			u.done, u.total = 0, 0 // the file is gone
		}
	}
	u.mu.Unlock()
	if err != nil && ctx.Err() == nil { // not camd stopping
		u.refused(err, m.Version)
	}
}

func (u *Updater) installImage(ctx context.Context, m Manifest) error {
	u.mu.Lock()
	now := u.nowLocked()
	u.mu.Unlock()
	if !now.Before(m.Expires) {
		return fmt.Errorf("%w: at %s", ErrExpired, m.Expires.UTC().Format(time.RFC3339))
	}
	url, err := imageURL(u.opts.FeedURL, m)
	if err != nil {
		return err
	}
	path := filepath.Join(u.opts.Dir, "image-"+m.Image.SHA256[:16])
	// Parts of images no longer offered go.
	old, _ := filepath.Glob(filepath.Join(u.opts.Dir, "image-*"))
	for _, p := range old {
		if p != path {
			os.Remove(p)
		}
	}
	err = download(ctx, u.opts.Client, url, path, m.Image.Size, m.Image.SHA256, func(done, total int64) {
		u.mu.Lock()
		u.done, u.total = done, total
		u.mu.Unlock()
	})
	if err != nil {
		return err
	}
	defer os.Remove(path)
	u.setPhase(Installing)
	if len(u.opts.InstallCommand) == 0 {
		return fmt.Errorf("%w: no update.install_command", ErrInstall)
	}
	if err := runHook(ctx, 30*time.Minute, u.opts.InstallCommand, path); err != nil {
		return err
	}
	u.mu.Lock()
	u.st.Pending = &Pending{Version: m.Version, From: u.opts.Version, Installed: time.Now()}
	u.st.Available = nil
	u.done, u.total = 0, 0
	u.phase = Rebooting
	u.saveLocked()
	u.mu.Unlock()
	u.publish(EventRebooting, fmt.Sprintf("update: version %s installed; rebooting into it", m.Version), map[string]string{"version": m.Version})
	return u.reboot(ctx)
}

// confirm marks a version installed before the reboot good once it
// passes its health check, or rolls it back.
func (u *Updater) confirm(ctx context.Context) {
	u.mu.Lock()
	p := u.st.Pending
	u.mu.Unlock()
	if p == nil {
		return
	}
	if u.opts.Version != p.Version {
		// Booted the old slot: the bootloader went back, or the reboot
		// never came.
		u.finish(p, false)
		u.publish(EventRolledBack, fmt.Sprintf("update: version %s did not start; running %s", p.Version, u.opts.Version),
			map[string]string{"version": p.Version, "running": u.opts.Version})
		return
	}
	u.setPhase(Confirming)
	deadline := time.NewTimer(u.opts.ConfirmTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(u.opts.HealthInterval)
	defer tick.Stop()
	var why error // the last check's
	markFailed := false
	for {
		if err := u.healthy(ctx); err == nil {
			if err := runHook(ctx, 2*time.Minute, u.opts.MarkGoodCommand); err != nil {
				if !markFailed { // once, not at every check
					u.publish(EventFailed, "update: marking the new slot good: "+err.Error(), map[string]string{"version": p.Version})
					markFailed = true
				}
				why = err
			} else {
				u.finish(p, true)
				u.publish(EventInstalled, fmt.Sprintf("update: version %s passed its health check and is kept", p.Version),
					map[string]string{"version": p.Version, "from": p.From})
				return
			}
		} else {
			why = err
		}
		select {
		case <-ctx.Done():
			u.setPhase(Idle) // confirmed at the next start
			return
		case <-tick.C:
		case <-deadline.C:
			u.finish(p, false)
			u.publish(EventRolledBack, fmt.Sprintf("update: version %s failed its health check for %s (%v); going back to %s",
				p.Version, u.opts.ConfirmTimeout, why, p.From), map[string]string{"version": p.Version, "running": p.From, "why": why.Error()})
			if err := runHook(ctx, 2*time.Minute, u.opts.RollbackCommand); err != nil {
				u.publish(EventFailed, "update: rollback: "+err.Error(), map[string]string{"version": p.Version})
			}
			u.setPhase(Rebooting)
			if err := u.reboot(ctx); err != nil {
				u.refused(err, p.Version)
			}
			return
		}
	}
}

func (u *Updater) healthy(ctx context.Context) error {
	if u.opts.Healthy == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, max(u.opts.HealthInterval, time.Second))
	defer cancel()
	return u.opts.Healthy(ctx)
}

// finish ends a pending update: kept (the floor rises) or rolled back.
func (u *Updater) finish(p *Pending, good bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.st.Pending = nil
	if good {
		u.st.Floor = p.Version
	} else {
		u.st.Failed = p.Version
	}
	u.phase = Idle
	u.saveLocked()
}

func (u *Updater) reboot(ctx context.Context) error {
	if err := runHook(ctx, 2*time.Minute, u.opts.RebootCommand); err != nil {
		return fmt.Errorf("update: reboot: %w", err)
	}
	return nil
}

func (u *Updater) setPhase(p string) {
	u.mu.Lock()
	u.phase = p
	u.mu.Unlock()
}

func (u *Updater) saveLocked() {
	if err := u.st.save(u.opts.Dir); err != nil {
		u.opts.Logger.Warn("update: saving state", "err", err)
	}
}

// refused publishes err: update.refused for a refusal, update.failed
// for other errors of an apply, nothing for a check that could not reach
// the server (Status says it).
func (u *Updater) refused(err error, version string) {
	u.opts.Logger.Warn("update", "err", err)
	data := map[string]string{}
	if version != "" {
		data["version"] = version
	}
	if r := Reason(err); r != "" {
		data["reason"] = r
		u.publish(EventRefused, err.Error(), data)
		return
	}
	if version != "" {
		u.publish(EventFailed, err.Error(), data)
	}
}

func (u *Updater) publish(kind, msg string, data map[string]string) {
	u.opts.Logger.Info(msg, "event", kind)
	if u.opts.Events == nil {
		return
	}
	if _, err := u.opts.Events.Add(eventlog.Event{Kind: kind, Message: msg, Data: data}); err != nil {
		u.opts.Logger.Warn("update: event", "kind", kind, "err", err)
	}
}
