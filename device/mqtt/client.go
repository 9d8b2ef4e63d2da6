package mqtt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"go.etcd.io/bbolt"

	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/device/settings"
	"github.com/camd-project/camd/storage"
	"github.com/camd-project/camd/storage/eventlog"
)

// ErrConfig marks an MQTT configuration that cannot work: a broker URL,
// CA file or pin that is not allowed.
var ErrConfig = errors.New("mqtt: configuration")

// Options configure a Client. Broker and DeviceID are required; the zero
// value of the others means defaults.
type Options struct {
	// Broker is the broker's URL: mqtt://host[:1883] (also tcp://) or,
	// with TLS, mqtts://host[:8883] (also ssl://, tls://). No user
	// information in it: the credentials are Username and Password.
	Broker string
	// Username and Password log in to the broker. The password is
	// given only to the broker: never logged.
	Username, Password string
	// CAFile holds PEM certificates to trust for the broker instead of
	// the system's (a broker with a private CA).
	CAFile string
	// PinSHA256 is the SHA-256 of the broker's certificate (hex, colons
	// allowed): that certificate and no other is accepted, whoever
	// signed it (a self-signed broker).
	PinSHA256 string
	// DeviceID is the device's ID: the client ID, the topics and Home
	// Assistant's unique IDs derive from it.
	DeviceID string
	// Version is camd's version, shown by Home Assistant.
	Version string
	// TopicPrefix is the first level of camd's topics (default "camd"):
	// TopicPrefix/NODE/....
	TopicPrefix string
	// DiscoveryPrefix is Home Assistant's discovery prefix (default
	// "homeassistant").
	DiscoveryPrefix string
	// StateInterval is how often the state topics are published again
	// besides each change (default 1 min): the storage sensors.
	StateInterval time.Duration
	// RetryInterval is the pause before the first connection is tried
	// again (default 5 s); MaxReconnectInterval the longest pause
	// between tries after a connection was lost (default 2 min; paho
	// doubles it from 1 s).
	RetryInterval, MaxReconnectInterval time.Duration
	// MaxReplay bounds what is published late (default 1,000): after a
	// reconnect or a restart, events from the newest MaxReplay of the
	// log on are published; the older ones missed are passed over.
	MaxReplay int
	Logger    *slog.Logger
}

// Status is what the storage and recording sensors show.
type Status struct {
	// UsedBytes is what the recordings hold, FreeBytes the room left on
	// their file system.
	UsedBytes, FreeBytes int64
	// Recording is "recording", "idle" (motion mode, no motion),
	// "paused" (a storage trouble) or "off".
	Recording string
}

// settingsChanger is the owner's settings, changed through the same path
// as the owner's PATCH /api/v1/settings.
type settingsChanger interface {
	Get() settings.Settings
	Change(patch map[string]json.RawMessage, by pairing.User) (settings.Settings, error)
}

// stills takes a snapshot JPEG.
type stills interface {
	JPEG(ctx context.Context, quality int) ([]byte, time.Time, error)
}

// Deps are what a Client uses of the daemon.
type Deps struct {
	// Bus is where the events come from; History is the event log that
	// the events missed while the broker was away are read from.
	Bus     *events.Bus
	History events.History
	// Catalog keeps the cursor: the last event handled, so that a
	// restart or a reconnect publishes what was missed.
	Catalog *storage.Catalog
	// Settings are read for the switches and selects and changed by
	// their commands.
	Settings settingsChanger
	// Stills takes the camera entity's pictures (nil: none).
	Stills stills
	// Status reads the storage and recording sensors.
	Status func() Status
}

// By is who the settings event names for a change from Home Assistant
// (data "by" and "by_name" of settings.changed).
var By = pairing.User{ID: "mqtt", Name: "MQTT"}

// Kinds are the events a Client publishes: what the camera saw, calls,
// recording and storage, and settings changes (for the switches'
// state). Users, invitations and crashes stay on the device.
var Kinds = []string{
	events.Motion, events.MotionEnd, events.DoorbellPressed, "call.*",
	"recording.*", "storage.*", events.SettingsChanged,
}

// Client is camd's MQTT client: built by New, run by Run.
type Client struct {
	opts   Options
	deps   Deps
	log    *slog.Logger
	broker string // Broker with a port
	tls    *tls.Config
	node   string // Home Assistant's node ID, and the topics' second level
	base   string // TopicPrefix/node

	client    paho.Client
	connected chan struct{} // a connection was made: announce
	imageReq  chan struct{} // a picture is wanted
	forget    atomic.Bool

	mu     sync.Mutex
	motion bool          // the motion sensor's state
	named  string        // the device name in the discovery configs published
	up     chan struct{} // closed while connected
	// cursor is the last event handled, saved is when it was last
	// written to the catalog, stale that late events changed the
	// entities' states without publishing them.
	cursor    uint64
	saved     time.Time
	stale     bool
	delivered uint64
	failed    uint64
	dropped   uint64
}

// New checks the options and builds a client; nothing is sent until Run.
func New(opts Options, deps Deps) (*Client, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.TopicPrefix == "" {
		opts.TopicPrefix = "camd"
	}
	if opts.DiscoveryPrefix == "" {
		opts.DiscoveryPrefix = "homeassistant"
	}
	if opts.StateInterval <= 0 {
		opts.StateInterval = time.Minute
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = 5 * time.Second
	}
	if opts.MaxReconnectInterval <= 0 {
		opts.MaxReconnectInterval = 2 * time.Minute
	}
	if opts.MaxReplay <= 0 {
		opts.MaxReplay = 1000
	}
	if deps.Bus == nil || deps.History == nil || deps.Catalog == nil || deps.Settings == nil || deps.Status == nil {
		return nil, errors.New("mqtt: Deps.Bus, History, Catalog, Settings and Status are required")
	}
	c := &Client{
		opts: opts, deps: deps, log: opts.Logger,
		node:      NodeID(opts.DeviceID),
		connected: make(chan struct{}, 1),
		imageReq:  make(chan struct{}, 1),
		up:        make(chan struct{}),
	}
	if c.node == "camd_" {
		return nil, fmt.Errorf("%w: no device ID", ErrConfig)
	}
	c.base = opts.TopicPrefix + "/" + c.node
	var err error
	if c.broker, c.tls, err = brokerConfig(opts); err != nil {
		return nil, err
	}
	return c, nil
}

// NodeID is Home Assistant's node ID for a device ID: "camd_" and the
// ID's letters and digits, lower case.
func NodeID(deviceID string) string {
	var b strings.Builder
	b.WriteString("camd_")
	for _, r := range strings.ToLower(deviceID) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func validPrefix(p string) bool {
	for level := range strings.SplitSeq(p, "/") {
		if level == "" || strings.ContainsFunc(level, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
		}) {
			return false
		}
	}
	return true
}

// Check reports whether the options can work (the configuration's
// validation): the broker's URL, the CA file, the pin and the topic
// prefixes.
func Check(opts Options) error {
	_, _, err := brokerConfig(opts)
	return err
}

// brokerConfig is the broker's URL for paho (with a port) and its TLS,
// after checking the topic prefixes.
func brokerConfig(opts Options) (string, *tls.Config, error) {
	for _, p := range []string{opts.TopicPrefix, opts.DiscoveryPrefix} {
		if p != "" && !validPrefix(p) {
			return "", nil, fmt.Errorf("%w: topic prefix %q: letters, digits, _ and - in levels separated by /", ErrConfig, p)
		}
	}
	u, err := url.Parse(opts.Broker)
	if err != nil || u.Host == "" || u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", nil, fmt.Errorf("%w: broker %q: mqtt://HOST[:PORT] or mqtts://HOST[:PORT]", ErrConfig, redact(opts.Broker))
	}
	if u.User != nil {
		return "", nil, fmt.Errorf("%w: broker URL with user information: set username and password instead", ErrConfig)
	}
	var secure bool
	switch u.Scheme {
	case "mqtt", "tcp":
	case "mqtts", "ssl", "tls":
		secure = true
	default:
		return "", nil, fmt.Errorf("%w: broker scheme %q: mqtt, tcp, mqtts, ssl or tls", ErrConfig, u.Scheme)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "1883"
		if secure {
			port = "8883"
		}
	}
	scheme := "tcp"
	if secure {
		scheme = "ssl"
	}
	broker := scheme + "://" + net.JoinHostPort(host, port)
	if !secure {
		if opts.CAFile != "" || opts.PinSHA256 != "" {
			return "", nil, fmt.Errorf("%w: ca_file and pin_sha256 need an mqtts:// broker", ErrConfig)
		}
		return broker, nil, nil
	}
	conf := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return "", nil, fmt.Errorf("%w: ca_file: %w", ErrConfig, err)
		}
		conf.RootCAs = x509.NewCertPool()
		if !conf.RootCAs.AppendCertsFromPEM(pem) {
			return "", nil, fmt.Errorf("%w: ca_file %s: no PEM certificate", ErrConfig, opts.CAFile)
		}
	}
	if opts.PinSHA256 != "" {
		pin, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(opts.PinSHA256), ":", ""))
		if err != nil || len(pin) != sha256.Size {
			return "", nil, fmt.Errorf("%w: pin_sha256: 64 hex digits (colons allowed), the SHA-256 of the broker's certificate", ErrConfig)
		}
		// The pin replaces the chain's check: the certificate is the
		// one the owner named, whoever signed it.
		conf.InsecureSkipVerify = true
		conf.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("mqtt: broker sent no certificate")
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(sum[:], pin) != 1 {
				return fmt.Errorf("mqtt: broker certificate %x is not the pinned one", sum)
			}
			return nil
		}
	}
	return broker, conf, nil
}

// redact cuts the user information out of a URL for a message.
func redact(raw string) string {
	if i := strings.LastIndex(raw, "@"); i >= 0 {
		if j := strings.Index(raw, "://"); j >= 0 && j < i {
			return raw[:j+3] + "…@" + raw[i+1:]
		}
		return "…@" + raw[i+1:]
	}
	return raw
}

// Topic is the full name of one of camd's topics (a level under
// TopicPrefix/NODE: "availability", "events", "motion", "mute/set", ...).
func (c *Client) Topic(level string) string { return c.base + "/" + level }

// Forget makes Run remove what camd published when it stops: the
// discovery configs (Home Assistant removes the device), and the
// retained states, picture and availability. For a factory reset.
func (c *Client) Forget() { c.forget.Store(true) }

func (c *Client) pahoOptions() *paho.ClientOptions {
	po := paho.NewClientOptions().
		AddBroker(c.broker).
		SetClientID(c.node).
		SetUsername(c.opts.Username).
		SetPassword(c.opts.Password).
		SetBinaryWill(c.Topic("availability"), []byte(offline), 1, true).
		SetCleanSession(true).
		SetStore(newCopyingStore()).
		SetKeepAlive(30 * time.Second).
		SetConnectTimeout(10 * time.Second).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(c.opts.RetryInterval).
		SetMaxReconnectInterval(c.opts.MaxReconnectInterval).
		SetOnConnectHandler(func(paho.Client) {
			c.log.Info("mqtt: connected", "broker", c.broker)
			c.setUp(true)
			select {
			case c.connected <- struct{}{}:
			default:
			}
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			c.setUp(false)
			c.log.Warn("mqtt: connection lost; reconnecting", "broker", c.broker, "err", err)
		})
	if c.tls != nil {
		po.SetTLSConfig(c.tls)
	}
	return po
}

const (
	online  = "online"
	offline = "offline"
	// waitPublish bounds how long stopping waits for the broker to
	// acknowledge what it publishes last.
	waitPublish = 3 * time.Second
)

// setUp records whether the connection is open: deliver waits for it.
func (c *Client) setUp(up bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.up:
		if !up {
			c.up = make(chan struct{})
		}
	default:
		if up {
			close(c.up)
		}
	}
}

// waitUp waits until the connection is open or ctx ends.
func (c *Client) waitUp(ctx context.Context) error {
	c.mu.Lock()
	up := c.up
	c.mu.Unlock()
	select {
	case <-up:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run connects (trying again until it can) and publishes until ctx
// ends; then it says offline (or, after Forget, removes everything it
// published) and disconnects.
func (c *Client) Run(ctx context.Context) error {
	if err := c.loadCursor(); err != nil {
		return err
	}
	c.client = paho.NewClient(c.pahoOptions())
	c.log.Info("mqtt: connecting", "broker", c.broker, "client_id", c.node, "login", c.opts.Username != "")
	c.client.Connect() // tried again until it connects; OnConnect tells
	var wg sync.WaitGroup
	wg.Go(func() { c.deliver(ctx) })
	wg.Go(func() { c.pictures(ctx) })
	tick := time.NewTicker(c.opts.StateInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			c.stop()
			return nil
		case <-c.connected:
			c.announce()
		case <-tick.C:
			if c.client.IsConnectionOpen() {
				c.publishState()
			}
		}
	}
}

// Stats counts the events the client handled since it started (the
// metrics' sink series).
type Stats struct {
	// Delivered: events the broker acknowledged (PUBACK); Failed:
	// publications it did not acknowledge in time (published again).
	Delivered, Failed uint64
	// Dropped: events of the kinds published that were passed over,
	// past MaxReplay after a long absence.
	Dropped uint64
	// Queued: events of the log (of every kind) the client has not gone
	// through yet: those waiting for the broker.
	Queued int
}

// Stats reads the counters.
func (c *Client) Stats() Stats {
	last, _ := c.deps.History.LastID()
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Delivered: c.delivered, Failed: c.failed, Dropped: c.dropped, Queued: int(last - min(last, c.cursor))}
}

// cursorBucket and cursorKey are where the catalog keeps the cursor.
var (
	cursorBucket = []byte("mqtt")
	cursorKey    = []byte("cursor")
)

// loadCursor reads the cursor; with none (MQTT just turned on) it
// starts at the log's newest event: nothing from before is published.
func (c *Client) loadCursor() error {
	var cur uint64
	found := false
	err := c.deps.Catalog.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(cursorBucket); b != nil {
			if v := b.Get(cursorKey); len(v) == 8 {
				cur, found = binary.BigEndian.Uint64(v), true
			}
		}
		return nil
	})
	if err == nil && !found {
		if cur, err = c.deps.History.LastID(); err == nil {
			err = c.saveCursor(cur)
		}
	}
	if err != nil {
		return fmt.Errorf("mqtt: cursor: %w", err)
	}
	c.mu.Lock()
	c.cursor = cur
	c.mu.Unlock()
	return nil
}

func (c *Client) saveCursor(id uint64) error {
	return c.deps.Catalog.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(cursorBucket)
		if err != nil {
			return err
		}
		return b.Put(cursorKey, binary.BigEndian.AppendUint64(nil, id))
	})
}

// saveEvery is how often the cursor is written while events flow: a
// crash publishes again at most that much (QoS 1 is at least once; the
// event IDs tell duplicates apart).
const saveEvery = time.Second

// moveCursor moves the cursor past id, and writes it when saveEvery
// has passed (or now, when force).
func (c *Client) moveCursor(id uint64, force bool) {
	c.mu.Lock()
	c.cursor = id
	write := force || time.Since(c.saved) >= saveEvery
	if write {
		c.saved = time.Now()
	}
	c.mu.Unlock()
	if write {
		if err := c.saveCursor(id); err != nil {
			c.log.Warn("mqtt: cannot keep the cursor", "err", err)
		}
	}
}

// replayCursor is where a subscription resumes: the cursor, or, when
// more than MaxReplay events came after it, the start of the newest
// MaxReplay (the events passed over are counted as dropped).
func (c *Client) replayCursor() (uint64, error) {
	last, err := c.deps.History.LastID()
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	cur := c.cursor
	c.mu.Unlock()
	bound := uint64(c.opts.MaxReplay)
	if last <= cur+bound {
		return cur, nil
	}
	from := last - bound
	// Count the passed-over events of the kinds published; Keep sees
	// each and keeps none, so nothing is held in memory.
	var n uint64
	if _, err := c.deps.History.Query(eventlog.Query{After: cur, Before: from + 1, Kinds: Kinds,
		Keep: func(eventlog.Event) bool { n++; return false }}); err != nil {
		return 0, err
	}
	c.log.Warn("mqtt: events missed while the broker was away are not all published", "passed_over", n, "published_from", from+1)
	c.mu.Lock()
	c.dropped += n
	c.mu.Unlock()
	c.moveCursor(from, true)
	return from, nil
}

// publishWait bounds how long an event waits for the broker's PUBACK
// before it is published again.
const publishWait = 10 * time.Second

// deliver publishes the events after the cursor in order until ctx
// ends or the bus closes (events.Follow): while the broker is away it
// waits, and those missed are read from the log once it is back.
func (c *Client) deliver(ctx context.Context) {
	events.Follow(ctx, c.deps.Bus, c.deps.History, c.replayCursor, c.handle, time.Second,
		func(err error) { c.log.Warn("mqtt: events", "err", err) })
	c.mu.Lock()
	cur := c.cursor
	c.mu.Unlock()
	c.moveCursor(cur, true)
}

// handle publishes m when it is of Kinds, once the broker acknowledges
// it, and moves the cursor past it.
func (c *Client) handle(ctx context.Context, m *events.Message) error {
	if !eventlog.KindMatches(Kinds, m.Kind) {
		c.moveCursor(m.ID, false)
		return nil
	}
	if err := c.waitUp(ctx); err != nil {
		return err
	}
	t := c.client.Publish(c.Topic("events"), 1, false, m.JSON)
	timer := time.NewTimer(publishWait)
	defer timer.Stop()
	var err error
	select {
	case <-t.Done():
		err = t.Error()
	case <-timer.C:
		err = errors.New("no PUBACK in time")
	case <-ctx.Done():
		return ctx.Err() // stopping: the cursor stays before m
	}
	if err != nil {
		c.mu.Lock()
		c.failed++
		c.mu.Unlock()
		return fmt.Errorf("mqtt: event %d not acknowledged: %w", m.ID, err)
	}
	c.mu.Lock()
	c.delivered++
	c.mu.Unlock()
	c.event(m)
	c.moveCursor(m.ID, false)
	return nil
}

// lateAfter is how old an event is when it counts as late: published on
// the events topic, but not pressed on the doorbell or flipped on the
// motion sensor (an automation would act on it late).
const lateAfter = 30 * time.Second

// event publishes what m changes of the entities: at once when it is
// fresh; when it is late, the states once the client has caught up.
func (c *Client) event(m *events.Message) {
	var e struct {
		Time time.Time `json:"time"`
	}
	json.Unmarshal(m.JSON, &e)
	late := time.Since(e.Time) > lateAfter
	switch {
	case m.Kind == events.Motion || m.Kind == events.MotionEnd:
		on := m.Kind == events.Motion
		c.mu.Lock()
		c.motion = on
		c.stale = c.stale || late
		c.mu.Unlock()
		if !late {
			c.client.Publish(c.Topic("motion"), 1, true, onOff(on))
			if on {
				c.wantPicture()
			}
		}
	case m.Kind == events.DoorbellPressed:
		if !late {
			b, _ := json.Marshal(map[string]any{"event_type": "press", "event_id": m.ID})
			c.client.Publish(c.Topic("doorbell"), 1, false, b)
			c.wantPicture()
		}
	case m.Kind == events.SettingsChanged || strings.HasPrefix(m.Kind, "recording.") || strings.HasPrefix(m.Kind, "storage."):
		if late {
			c.mu.Lock()
			c.stale = true
			c.mu.Unlock()
		} else {
			c.publishState()
		}
	}
	c.mu.Lock()
	stale, motion := c.stale, c.motion
	c.mu.Unlock()
	if !stale {
		return
	}
	if last, err := c.deps.History.LastID(); err == nil && m.ID >= last {
		// Caught up: the states as they are now.
		c.mu.Lock()
		c.stale = false
		c.mu.Unlock()
		c.client.Publish(c.Topic("motion"), 1, true, onOff(motion))
		c.publishState()
	}
}

func onOff(on bool) string {
	if on {
		return "ON"
	}
	return "OFF"
}

func (c *Client) wantPicture() {
	select {
	case c.imageReq <- struct{}{}:
	default: // one is wanted already
	}
}

// pictures takes the camera entity's pictures when they are wanted, one
// at a time, off the events' path.
func (c *Client) pictures(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.imageReq:
		}
		if c.deps.Stills == nil {
			continue
		}
		jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		jpg, _, err := c.deps.Stills.JPEG(jctx, 0)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("mqtt: no snapshot for the camera entity", "err", err)
			}
			continue
		}
		c.client.Publish(c.Topic("snapshot"), 1, true, jpg)
	}
}

// announce publishes, after each connection: the discovery configs,
// availability, every state and a picture, and subscribes to the
// commands.
func (c *Client) announce() {
	if t := c.client.Subscribe(c.Topic("+/set"), 1, c.command); !t.WaitTimeout(waitPublish) || t.Error() != nil {
		// The next connection subscribes again.
		c.log.Warn("mqtt: cannot subscribe to the commands", "topic", c.Topic("+/set"), "err", t.Error())
	}
	c.publishDiscovery(c.deps.Settings.Get().Name)
	c.client.Publish(c.Topic("availability"), 1, true, online)
	c.mu.Lock()
	motion := c.motion
	c.mu.Unlock()
	c.client.Publish(c.Topic("motion"), 1, true, onOff(motion))
	c.publishState()
	c.wantPicture()
}

// publishState publishes the switches', selects' and sensors' states
// (retained), and the discovery configs again when the camera's name
// changed.
func (c *Client) publishState() {
	s := c.deps.Settings.Get()
	c.mu.Lock()
	renamed := c.named != "" && c.named != s.Name
	c.mu.Unlock()
	if renamed {
		c.publishDiscovery(s.Name)
	}
	st := c.deps.Status()
	for _, e := range entities() {
		if e.state == nil {
			continue
		}
		c.client.Publish(c.Topic(e.object), 1, true, e.state(s, st))
	}
}

// publishDiscovery publishes every entity's discovery config (retained)
// for a device called name.
func (c *Client) publishDiscovery(name string) {
	for _, e := range entities() {
		b, _ := json.Marshal(c.config(e, name))
		c.client.Publish(c.discoveryTopic(e), 1, true, b)
	}
	c.mu.Lock()
	c.named = name
	c.mu.Unlock()
}

// command applies a command of Home Assistant's: a setting's new value
// on OBJECT/set. A value the entity does not take is ignored with a log
// line; so is a retained command (it would be applied again at each
// connection).
func (c *Client) command(_ paho.Client, m paho.Message) {
	rest, mine := strings.CutPrefix(m.Topic(), c.base+"/")
	object, set := strings.CutSuffix(rest, "/set")
	payload := m.Payload()
	var e *entity
	for _, x := range entities() {
		if mine && set && x.object == object && x.setting != "" {
			e = &x
			break
		}
	}
	switch {
	case e == nil:
		c.log.Warn("mqtt: command for no entity ignored", "topic", m.Topic())
		return
	case m.Retained():
		c.log.Warn("mqtt: retained command ignored", "topic", m.Topic())
		return
	}
	value, ok := e.parse(string(bytes.TrimSpace(payload)))
	if !ok {
		c.log.Warn("mqtt: command ignored: not a value the entity takes", "topic", m.Topic(),
			"payload", quote(payload), "allowed", strings.Join(e.values, ", "))
		return
	}
	raw, _ := json.Marshal(value)
	if _, err := c.deps.Settings.Change(map[string]json.RawMessage{e.setting: raw}, By); err != nil {
		c.log.Warn("mqtt: command refused", "topic", m.Topic(), "err", err)
	}
	// The state follows the settings.changed event; a value that
	// changed nothing is confirmed here.
	c.publishState()
}

// quote is a payload for a log line: quoted, at most 64 bytes.
func quote(p []byte) string {
	if len(p) > 64 {
		return fmt.Sprintf("%q…", p[:64])
	}
	return fmt.Sprintf("%q", p)
}

// stop says offline or, after Forget, removes what was published, then
// disconnects.
func (c *Client) stop() {
	deadline := time.Now().Add(waitPublish)
	var tokens []paho.Token
	if c.forget.Load() && c.client.IsConnectionOpen() {
		for _, t := range c.retainedTopics() {
			tokens = append(tokens, c.client.Publish(t, 1, true, []byte{}))
		}
		c.log.Info("mqtt: removed the discovery configs and retained states")
	} else if c.client.IsConnectionOpen() {
		tokens = append(tokens, c.client.Publish(c.Topic("availability"), 1, true, offline))
	}
	for _, t := range tokens {
		if !t.WaitTimeout(time.Until(deadline)) || t.Error() != nil {
			c.log.Warn("mqtt: not acknowledged before disconnecting", "err", t.Error())
			break
		}
	}
	c.client.Disconnect(250)
}

// retainedTopics is every topic camd publishes retained: the discovery
// configs, the states, the picture and availability.
func (c *Client) retainedTopics() []string {
	var out []string
	for _, e := range entities() {
		out = append(out, c.discoveryTopic(e))
		if e.state != nil {
			out = append(out, c.Topic(e.object))
		}
	}
	return append(out, c.Topic("motion"), c.Topic("snapshot"), c.Topic("availability"))
}

// Remove connects once and removes what a Client with these options
// published (Forget's removal): for when the owner turned MQTT off. It
// gives up when ctx ends.
func Remove(ctx context.Context, opts Options, deps Deps) error {
	c, err := New(opts, deps)
	if err != nil {
		return err
	}
	po := c.pahoOptions().SetAutoReconnect(false).SetConnectRetry(false).SetOnConnectHandler(nil)
	po.WillEnabled = false
	c.client = paho.NewClient(po)
	t := c.client.Connect()
	select {
	case <-t.Done():
	case <-ctx.Done():
		c.client.Disconnect(0)
		return fmt.Errorf("mqtt: remove: %w", ctx.Err())
	}
	if t.Error() != nil {
		return fmt.Errorf("mqtt: remove: %w", t.Error())
	}
	c.Forget()
	c.stop()
	// Turned on again later, MQTT starts from then.
	return c.deps.Catalog.Update(func(tx *bbolt.Tx) error {
		if tx.Bucket(cursorBucket) == nil {
			return nil
		}
		return tx.DeleteBucket(cursorBucket)
	})
}
