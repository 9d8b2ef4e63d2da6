package webpush

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/bbolt"

	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/storage/eventlog"
)

// Errors of the subscriptions.
var (
	ErrNotFound = errors.New("webpush: no such subscription")
	ErrEndpoint = errors.New("webpush: the endpoint must be an https URL of a public host")
	ErrTooMany  = errors.New("webpush: too many subscriptions for this user")
	ErrType     = errors.New("webpush: not an event type this user may push")
	// ErrRefused: the address of a push service is not public (a
	// loopback, private, link-local, … address) and the dialer refused it.
	ErrRefused = errors.New("webpush: refused to connect to a non-public address")
)

// MaxPerUser is the most subscriptions one user may have (browsers and
// phones).
const MaxPerUser = 10

// DefaultTypes push unless a user chooses: the doorbell and calls that
// ring, and missed calls. Motion is off until the user turns it on.
var DefaultTypes = []string{events.DoorbellPressed, events.CallRinging, events.CallMissed}

// DefaultMotionInterval: at most one motion push a user per interval.
const DefaultMotionInterval = 5 * time.Minute

var (
	bucketRoot  = []byte("push")
	bucketSubs  = []byte("subscriptions") // ID → Subscription
	bucketPrefs = []byte("preferences")   // user ID → Preferences
	keyCursor   = []byte("cursor")
)

// Subscription is a browser's push subscription, owned by one user.
type Subscription struct {
	ID       string    `json:"id"`
	User     string    `json:"user"`
	Endpoint string    `json:"endpoint"`
	Keys     Keys      `json:"keys"`
	Created  time.Time `json:"created"`
	// After is the newest event when it was made: later events push.
	After uint64 `json:"after"`
	// LastError is what the push service last refused, if anything.
	LastError string `json:"last_error,omitempty"`
}

// Keys are the subscription's keys (base64url), as PushSubscription's
// toJSON() writes them.
type Keys struct {
	P256dh string `json:"p256dh"`
	Auth   string `json:"auth"`
}

// Preferences say which event types push to a user's subscriptions.
type Preferences struct {
	Types []string `json:"types"`
	// MotionInterval: at most one motion push per interval (seconds).
	MotionInterval int `json:"motion_interval_seconds"`
}

// DefaultPreferences are a user's until they choose.
func DefaultPreferences() Preferences {
	return Preferences{Types: slices.Clone(DefaultTypes), MotionInterval: int(DefaultMotionInterval / time.Second)}
}

// catalog keeps the subscriptions (*storage.Catalog).
type catalog interface {
	Update(func(*bbolt.Tx) error) error
	View(func(*bbolt.Tx) error) error
}

// bus is where events come from (*events.Bus).
type bus interface {
	Subscribe(events.History, events.Subscriber) (*events.Subscription, error)
}

// users are the paired users (*pairing.Manager).
type users interface {
	Users() []pairing.User
}

// Options configure a Sink. Catalog, Bus, History, Users and Key are
// required; the zero value of the others means defaults.
type Options struct {
	Catalog catalog
	Bus     bus
	History events.History
	Users   users
	Key     *Key
	// Subject is the VAPID contact (sub): "mailto:…" or an https URL.
	Subject string
	// AllowPrivate lets endpoints be on loopback and private addresses:
	// for tests only (push.allow_private_endpoints).
	AllowPrivate bool
	// TLS is the client's TLS configuration (default: the system's roots).
	TLS *tls.Config
	// TTL is how long a push service keeps a message for a phone that is
	// off (default 10 min): a ring an hour late is noise.
	TTL time.Duration
	// MaxAge: events older than this when camd catches up after a
	// restart are not pushed (default the TTL).
	MaxAge time.Duration
	// Workers is how many pushes are sent at once (default 4).
	Workers int
	Now     func() time.Time
	Logger  *slog.Logger
}

// Sink is Web Push: the subscriptions, the preferences, the sending.
type Sink struct {
	opts   Options
	client *http.Client

	mu         sync.Mutex
	lastMotion map[string]time.Time // user → last motion push
	jobs       chan job
	closed     bool
	running    sync.WaitGroup
	// sent counts pushes a push service accepted, failed those it did
	// not, old the events too old to push when they were reached.
	sent, failed, old uint64
	// cursorAt is the cursor as last written (only consume uses it).
	cursorAt uint64
}

type job struct {
	sub     Subscription
	payload []byte
	urgency string
}

// New opens the subscriptions kept in the catalog.
func New(opts Options) (*Sink, error) {
	if opts.TTL <= 0 {
		opts.TTL = 10 * time.Minute
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = opts.TTL
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Subject == "" {
		opts.Subject = "https://github.com/camd-project/camd"
	}
	s := &Sink{opts: opts, lastMotion: map[string]time.Time{}, jobs: make(chan job, 64)}
	s.client = &http.Client{
		Timeout:       15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, Control: s.control}).DialContext,
			TLSClientConfig:     opts.TLS,
			TLSHandshakeTimeout: 10 * time.Second,
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
		},
	}
	err := opts.Catalog.Update(func(tx *bbolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bucketRoot)
		if err != nil {
			return err
		}
		for _, name := range [][]byte{bucketSubs, bucketPrefs} {
			if _, err := root.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("webpush: %w", err)
	}
	return s, nil
}

// PublicKey is the VAPID public key (base64url) a page subscribes with.
func (s *Sink) PublicKey() string { return s.opts.Key.Public() }

// control refuses a connection to an address that is not public, unless
// AllowPrivate: checked on the address actually dialled, after DNS, so
// a name that resolves to the LAN (or rebinds to it) is refused too.
func (s *Sink) control(network, address string, _ syscall.RawConn) error {
	if s.opts.AllowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !Public(ap.Addr()) {
		return fmt.Errorf("%w: %s", ErrRefused, address)
	}
	return nil
}

// nonPublic are the ranges Public refuses besides what netip names:
// shared address space (CGNAT), "this network", IETF protocol
// assignments, benchmarking, reserved, documentation, NAT64 (it reaches
// IPv4 addresses through a translator), 6to4 and Teredo (they embed
// IPv4 addresses), discard-only.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2001::/32"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"),
}

// Public reports whether a is a public unicast address: not loopback,
// private, link-local, multicast, unspecified, nor one of nonPublic.
func Public(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() || a.Zone() != "" {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// CheckEndpoint reports whether endpoint may be pushed to: https, a
// host, no credentials, and not an address or name that is plainly not
// public (the dialer checks the address it connects to as well).
func (s *Sink) CheckEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" || len(endpoint) > 2048 {
		return ErrEndpoint
	}
	if s.opts.AllowPrivate {
		return nil
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if a, err := netip.ParseAddr(host); err == nil && !Public(a) {
		return ErrEndpoint
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") || strings.HasSuffix(host, ".local") || !strings.Contains(host, ".") && !strings.Contains(host, ":") {
		return ErrEndpoint
	}
	return nil
}

// Subscribe adds a subscription for user (replacing one of theirs with
// the same endpoint).
func (s *Sink) Subscribe(user, endpoint string, keys Keys) (Subscription, error) {
	if err := s.CheckEndpoint(endpoint); err != nil {
		return Subscription{}, err
	}
	if _, _, err := decodeKeys(keys.P256dh, keys.Auth); err != nil {
		return Subscription{}, err
	}
	last, err := s.opts.History.LastID()
	if err != nil {
		return Subscription{}, fmt.Errorf("webpush: %w", err)
	}
	sub := Subscription{ID: "ps_" + randomHex(8), User: user, Endpoint: endpoint, Keys: keys, Created: s.opts.Now().UTC(), After: last}
	err = s.opts.Catalog.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketRoot).Bucket(bucketSubs)
		n := 0
		var same []byte
		err := b.ForEach(func(k, v []byte) error {
			var o Subscription
			if json.Unmarshal(v, &o) == nil && o.User == user {
				n++
				if o.Endpoint == endpoint {
					same = slices.Clone(k)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if same != nil {
			n--
			if err := b.Delete(same); err != nil {
				return err
			}
		}
		if n >= MaxPerUser {
			return ErrTooMany
		}
		return putJSON(b, []byte(sub.ID), sub)
	})
	return sub, err
}

// List returns user's subscriptions ("" : everyone's).
func (s *Sink) List(user string) ([]Subscription, error) {
	subs := []Subscription{}
	err := s.opts.Catalog.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketRoot).Bucket(bucketSubs).ForEach(func(k, v []byte) error {
			var sub Subscription
			if err := json.Unmarshal(v, &sub); err != nil {
				return err
			}
			if user == "" || sub.User == user {
				subs = append(subs, sub)
			}
			return nil
		})
	})
	slices.SortFunc(subs, func(a, b Subscription) int { return a.Created.Compare(b.Created) })
	return subs, err
}

// Unsubscribe removes user's subscription id (ErrNotFound for another
// user's: a user cannot learn or remove another's).
func (s *Sink) Unsubscribe(user, id string) error {
	return s.opts.Catalog.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketRoot).Bucket(bucketSubs)
		var sub Subscription
		v := b.Get([]byte(id))
		if v == nil || json.Unmarshal(v, &sub) != nil || sub.User != user {
			return ErrNotFound
		}
		return b.Delete([]byte(id))
	})
}

// RemoveUser removes every subscription and the preferences of a user
// (revoked).
func (s *Sink) RemoveUser(user string) error {
	return s.opts.Catalog.Update(func(tx *bbolt.Tx) error {
		root := tx.Bucket(bucketRoot)
		if err := root.Bucket(bucketPrefs).Delete([]byte(user)); err != nil {
			return err
		}
		return deleteWhere(root.Bucket(bucketSubs), func(sub Subscription) bool { return sub.User == user })
	})
}

func deleteWhere(b *bbolt.Bucket, match func(Subscription) bool) error {
	var keys [][]byte
	b.ForEach(func(k, v []byte) error {
		var sub Subscription
		if json.Unmarshal(v, &sub) == nil && match(sub) {
			keys = append(keys, slices.Clone(k))
		}
		return nil
	})
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Preferences returns a user's preferences.
func (s *Sink) Preferences(user string) (Preferences, error) {
	p := DefaultPreferences()
	err := s.opts.Catalog.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketRoot).Bucket(bucketPrefs).Get([]byte(user)); v != nil {
			return json.Unmarshal(v, &p)
		}
		return nil
	})
	return p, err
}

// SetPreferences sets a user's preferences: each type must be one the
// user may see (owner: every type), "family.*" allowed; the motion
// interval 0 means the default, and is at least 10 s.
func (s *Sink) SetPreferences(user string, owner bool, p Preferences) (Preferences, error) {
	if p.Types == nil {
		p.Types = []string{}
	}
	for _, t := range p.Types {
		known := slices.ContainsFunc(events.Types, func(ty events.Type) bool {
			return (ty.Name == t || eventlog.KindMatches([]string{t}, ty.Name)) && events.Visible(ty.Name, owner)
		})
		if !known {
			return Preferences{}, fmt.Errorf("%w: %q", ErrType, t)
		}
	}
	if p.MotionInterval == 0 {
		p.MotionInterval = int(DefaultMotionInterval / time.Second)
	}
	if p.MotionInterval < 10 || p.MotionInterval > 86400 {
		return Preferences{}, fmt.Errorf("%w: motion_interval_seconds must be within 10 to 86400", ErrType)
	}
	err := s.opts.Catalog.Update(func(tx *bbolt.Tx) error {
		return putJSON(tx.Bucket(bucketRoot).Bucket(bucketPrefs), []byte(user), p)
	})
	return p, err
}

// Run pushes events until ctx ends.
func (s *Sink) Run(ctx context.Context) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.running.Add(1)
	s.mu.Unlock()
	defer s.running.Done()
	var wg sync.WaitGroup
	for range s.opts.Workers {
		wg.Go(func() {
			for j := range s.jobs {
				s.push(ctx, j)
			}
		})
	}
	s.consume(ctx)
	close(s.jobs)
	wg.Wait()
}

// Close waits for Run to return (its context must have ended) and
// refuses another. It is safe to call twice.
func (s *Sink) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.running.Wait()
}

// consume pushes each event after the cursor (events.Follow); an event
// that could not be pushed is logged and passed.
func (s *Sink) consume(ctx context.Context) {
	cursor := func() (uint64, error) {
		var c uint64
		err := s.opts.Catalog.View(func(tx *bbolt.Tx) error {
			if v := tx.Bucket(bucketRoot).Get(keyCursor); len(v) == 8 {
				c = binary.BigEndian.Uint64(v)
			}
			return nil
		})
		s.cursorAt = c
		return c, err
	}
	handle := func(ctx context.Context, m *events.Message) error {
		if err := s.handle(ctx, m); err != nil {
			s.opts.Logger.Warn("webpush: an event was not pushed", "event", m.ID, "err", err)
		}
		return nil
	}
	events.Follow(ctx, s.opts.Bus, s.opts.History, cursor, handle, time.Second,
		func(err error) { s.opts.Logger.Warn("webpush: events", "err", err) })
}

// pushed is what a push carries: enough for a notification; the page
// reads the rest from the API.
type pushed struct {
	ID       uint64    `json:"id"`
	Type     string    `json:"type"`
	Time     time.Time `json:"time"`
	Camera   string    `json:"camera,omitempty"`
	Message  string    `json:"message,omitempty"`
	Snapshot string    `json:"snapshot,omitempty"`
}

// handle pushes m to the subscriptions that want it, and moves the
// cursor past it.
func (s *Sink) handle(ctx context.Context, m *events.Message) error {
	subs, err := s.List("")
	if err != nil {
		return err
	}
	if len(subs) == 0 {
		// Nothing to send; the cursor moves every cursorLag events, so
		// that a later subscription does not read far back in the log.
		if m.ID-s.cursorAt < cursorLag {
			return nil
		}
		return s.setCursor(m.ID)
	}
	var e eventlog.Event
	if err := json.Unmarshal(m.JSON, &e); err != nil {
		return err
	}
	if m.Kind == events.UserRevoked && e.Data["user"] != "" {
		if err := s.RemoveUser(e.Data["user"]); err != nil {
			return err
		}
	}
	now := s.opts.Now()
	if now.Sub(e.Time) > s.opts.MaxAge {
		s.mu.Lock()
		s.old++
		s.mu.Unlock()
	} else {
		roles := map[string]pairing.Role{}
		for _, u := range s.opts.Users.Users() {
			if u.Expires.IsZero() || u.Expires.After(now) {
				roles[u.ID] = u.Role
			}
		}
		payload, _ := json.Marshal(pushed{e.ID, e.Kind, e.Time, e.Camera, e.Message, e.Snapshot})
		urgency := "normal"
		if eventlog.KindMatches([]string{"doorbell.*", "call.ringing"}, m.Kind) {
			urgency = "high"
		}
		wants := map[string]bool{}
		for _, sub := range subs {
			role, ok := roles[sub.User]
			if !ok || m.ID <= sub.After || !events.Visible(m.Kind, role == pairing.Owner) {
				continue
			}
			want, seen := wants[sub.User]
			if !seen {
				want = s.wants(sub.User, m.Kind, now)
				wants[sub.User] = want
			}
			if want {
				select {
				case s.jobs <- job{sub, payload, urgency}:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
	}
	return s.setCursor(m.ID)
}

// cursorLag is how many events without a push the cursor may lag.
const cursorLag = 256

func (s *Sink) setCursor(id uint64) error {
	err := s.opts.Catalog.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketRoot).Put(keyCursor, binary.BigEndian.AppendUint64(nil, id))
	})
	if err == nil {
		s.cursorAt = id
	}
	return err
}

// wants reports whether user's preferences push kind now (motion at
// most once their interval).
func (s *Sink) wants(user, kind string, now time.Time) bool {
	p, err := s.Preferences(user)
	if err != nil || len(p.Types) == 0 || !eventlog.KindMatches(p.Types, kind) {
		return false
	}
	if kind != events.Motion {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if last, ok := s.lastMotion[user]; ok && now.Sub(last) < time.Duration(p.MotionInterval)*time.Second {
		return false
	}
	s.lastMotion[user] = now
	return true
}

// push sends one message, trying again twice on 429 and 5xx; 404 and
// 410 end the subscription.
func (s *Sink) push(ctx context.Context, j job) {
	var status int
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(attempt) * time.Second):
			}
		}
		status, err = s.send(ctx, j)
		if err == nil && status != http.StatusTooManyRequests && status < 500 {
			break
		}
	}
	s.mu.Lock()
	if err == nil && status/100 == 2 {
		s.sent++
	} else {
		s.failed++
	}
	s.mu.Unlock()
	switch {
	case err != nil:
		s.opts.Logger.Info("webpush: push failed", "subscription", j.sub.ID, "err", err)
	case status == http.StatusNotFound || status == http.StatusGone:
		s.opts.Logger.Info("webpush: subscription expired", "subscription", j.sub.ID, "status", status)
		s.opts.Catalog.Update(func(tx *bbolt.Tx) error {
			return deleteWhere(tx.Bucket(bucketRoot).Bucket(bucketSubs), func(sub Subscription) bool { return sub.ID == j.sub.ID })
		})
	case status/100 != 2:
		s.opts.Logger.Info("webpush: push refused", "subscription", j.sub.ID, "status", status)
	}
}

// send encrypts and posts one message (RFC 8030 §5).
func (s *Sink) send(ctx context.Context, j job) (int, error) {
	body, err := Encrypt(j.sub.Keys.P256dh, j.sub.Keys.Auth, j.payload)
	if err != nil {
		return 0, err
	}
	auth, err := s.opts.Key.authorization(j.sub.Endpoint, s.opts.Subject, s.opts.Now())
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.sub.Endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Encoding", "aes128gcm")
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("TTL", strconv.Itoa(int(s.opts.TTL/time.Second)))
	req.Header.Set("Urgency", j.urgency)
	resp, err := s.client.Do(req)
	if err != nil {
		// Without the endpoint: its path is the subscription's
		// capability, kept out of logs.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Stats counts what the sink did since camd started.
type Stats struct {
	// Delivered: pushes a push service accepted; Failed: those it did
	// not (after its retries).
	Delivered, Failed uint64
	// Dropped: events with subscriptions that were older than MaxAge
	// when the sink reached them (catching up after a restart).
	Dropped uint64
	// Queued: pushes waiting for a worker.
	Queued int
}

// Stats reads the counters (the metrics' sink series).
func (s *Sink) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Delivered: s.sent, Failed: s.failed, Dropped: s.old, Queued: len(s.jobs)}
}

func putJSON(b *bbolt.Bucket, k []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, data)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
