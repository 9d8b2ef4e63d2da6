package nvr

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/storage"
)

// Event types the manager tells Options.Event of (device/events).
const (
	EventOnline       = events.CameraOnline
	EventOffline      = events.CameraOffline
	EventUnauthorized = events.CameraUnauthorized
)

// Options configure a Manager. The zero value of each field but Catalog
// means its default.
type Options struct {
	Catalog *storage.Catalog
	// Name is the name the NVR pairs with camd cameras as (default
	// "camd NVR").
	Name string
	// Attach is called when a camera's puller starts, with the camera's
	// hub, to attach its consumers (the recorder); the function it
	// returns is called when the puller stops, after the last frame.
	Attach func(c Camera, hub *media.Hub) (detach func())
	// Changed tells of a change the owner made to a camera (Set): its
	// name or its recording mode.
	Changed func(c Camera)
	// Motion tells of the motion a camera in motion mode reports
	// (active, then not), for its recorder.
	Motion func(c Camera, active bool, at time.Time)
	// Event tells of a camera's change of state: EventOnline,
	// EventOffline (data "error"), EventUnauthorized.
	Event func(kind string, c Camera, data map[string]string)
	// Silence is how long a camera may send nothing before it is
	// offline (default 6 s: the event comes within 10 s, with room for a loaded machine).
	Silence time.Duration
	// MinBackoff and MaxBackoff bound the wait before trying an offline
	// camera again: it doubles from MinBackoff (default 1 s) up to
	// MaxBackoff (default 30 s), and starts over once frames came.
	MinBackoff, MaxBackoff time.Duration
	// UnauthorizedRetry is the wait before trying a camera that refused
	// the NVR's credential again (default 5 min).
	UnauthorizedRetry time.Duration
	// Timeout bounds a camera's answer when it is added and each RTSP
	// request (default 10 s).
	Timeout time.Duration
	// MaxCameras bounds the cameras added (default 32).
	MaxCameras int
	Logger     *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Name == "" {
		o.Name = "camd NVR"
	}
	if o.Attach == nil {
		o.Attach = func(Camera, *media.Hub) func() { return func() {} }
	}
	if o.Changed == nil {
		o.Changed = func(Camera) {}
	}
	if o.Motion == nil {
		o.Motion = func(Camera, bool, time.Time) {}
	}
	if o.Event == nil {
		o.Event = func(string, Camera, map[string]string) {}
	}
	if o.Silence <= 0 {
		o.Silence = 6 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.UnauthorizedRetry <= 0 {
		o.UnauthorizedRetry = 5 * time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxCameras <= 0 {
		o.MaxCameras = 32
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// AddRequest names a camera to add: exactly one of Code (a camd
// camera's invitation, "CAMD1:…"), RTSP (a URL, user and password in it
// or in User and Password) and ONVIF (HOST:PORT of its ONVIF service,
// with User and Password).
type AddRequest struct {
	Code string `json:"code,omitempty"`
	// Addr overrides the address in Code (HOST:PORT).
	Addr     string `json:"addr,omitempty"`
	RTSP     string `json:"rtsp,omitempty"`
	ONVIF    string `json:"onvif,omitempty"`
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`
	Name     string `json:"name,omitempty"`
	// Recording is the camera's recording mode (default continuous).
	Recording Recording `json:"recording,omitempty"`
	// QuotaShare is the camera's share of the recording quota in
	// percent (default 0: an equal part).
	QuotaShare float64 `json:"quota_share,omitempty"`
}

// Change is what the owner changes of a camera; nil fields stay.
type Change struct {
	Name       *string    `json:"name,omitempty"`
	Recording  *Recording `json:"recording,omitempty"`
	QuotaShare *float64   `json:"quota_share,omitempty"`
}

// maxName bounds a camera's name, in bytes.
const maxName = 64

func checkName(name string) error {
	if len(name) > maxName || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%w: a name is at most %d bytes, without control characters", ErrBadRequest, maxName)
	}
	return nil
}

func checkShare(p float64) error {
	if !(p >= 0 && p <= 100) {
		return fmt.Errorf("%w: quota_share %v is not a percentage (0: an equal part)", ErrBadRequest, p)
	}
	return nil
}

func checkRecording(r Recording) error {
	if r != RecordContinuous && r != RecordMotion && r != RecordOff {
		return fmt.Errorf("%w: recording %q is not continuous, motion or off", ErrBadRequest, r)
	}
	return nil
}

// Set changes a camera's name, recording mode or share of the quota,
// and tells
// Options.Changed.
func (m *Manager) Set(id string, ch Change) (Camera, error) {
	if ch.Name != nil {
		if err := checkName(*ch.Name); err != nil {
			return Camera{}, err
		}
	}
	if ch.Recording != nil {
		if err := checkRecording(*ch.Recording); err != nil {
			return Camera{}, err
		}
	}
	if ch.QuotaShare != nil {
		if err := checkShare(*ch.QuotaShare); err != nil {
			return Camera{}, err
		}
	}
	m.mu.Lock()
	e, ok := m.cameras[id]
	switch {
	case !ok:
		m.mu.Unlock()
		return Camera{}, ErrNotFound
	case e.hub == nil:
		m.mu.Unlock()
		return Camera{}, ErrRemoved
	}
	rec := e.rec
	if ch.Recording != nil && *ch.Recording == RecordMotion && !rec.motionSource() {
		m.mu.Unlock()
		return Camera{}, ErrNoMotion
	}
	if ch.Name != nil && *ch.Name != "" {
		rec.Camera.Name = *ch.Name
	}
	if ch.Recording != nil {
		rec.Camera.Recording = *ch.Recording
	}
	if ch.QuotaShare != nil {
		rec.Camera.QuotaShare = *ch.QuotaShare
	}
	if err := m.cat.put(rec); err != nil {
		m.mu.Unlock()
		return Camera{}, fmt.Errorf("nvr: %w", err)
	}
	e.rec.Camera.Name, e.rec.Camera.Recording, e.rec.Camera.QuotaShare = rec.Camera.Name, rec.Camera.Recording, rec.Camera.QuotaShare
	if e.run != nil {
		e.run.setMode(rec.Camera.Recording)
	}
	c := e.camera()
	m.mu.Unlock()
	m.opts.Changed(c)
	return c, nil
}

// Manager keeps the NVR's cameras and pulls each into a hub of its own.
type Manager struct {
	opts Options
	cat  catalog
	log  *slog.Logger

	mu      sync.Mutex
	cameras map[string]*entry
	adding  map[string]bool // keys of cameras being added
	ctx     context.Context // set by Run: pullers run under it
	wg      sync.WaitGroup
}

// entry is one camera: its record and, while it is pulled, its runner.
type entry struct {
	rec record
	hub *media.Hub
	run *runner // nil when not running
}

// Open loads the cameras from the catalog; nothing is pulled until Run.
func Open(opts Options) (*Manager, error) {
	m := &Manager{opts: opts.withDefaults(), cat: catalog{db: opts.Catalog}, cameras: map[string]*entry{}, adding: map[string]bool{}}
	m.log = m.opts.Logger
	if err := m.cat.init(); err != nil {
		return nil, fmt.Errorf("nvr: %w", err)
	}
	recs, err := m.cat.load()
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		if r.Camera.Recording == "" {
			r.Camera.Recording = RecordContinuous
		}
		e := &entry{rec: r}
		if r.Camera.RemovedAt.IsZero() {
			e.rec.Camera.State, e.rec.Camera.Since = Connecting, time.Now()
			e.hub = media.NewHub(media.HubOptions{})
		} else {
			e.rec.Camera.State, e.rec.Camera.Since = Removed, r.Camera.RemovedAt
		}
		m.cameras[r.Camera.ID] = e
	}
	return m, nil
}

// Run pulls every camera until ctx ends, then stops the pullers and waits
// for them; cameras added meanwhile are pulled at once.
func (m *Manager) Run(ctx context.Context) {
	m.mu.Lock()
	m.ctx = ctx
	for _, e := range m.cameras {
		m.startLocked(e)
	}
	m.mu.Unlock()
	<-ctx.Done()
	m.mu.Lock()
	for _, e := range m.cameras {
		e.run = nil
	}
	m.mu.Unlock()
	m.wg.Wait()
}

// Close closes the cameras' hubs; call it after Run returned.
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.cameras {
		if e.hub != nil {
			e.hub.Close()
		}
	}
}

func (m *Manager) startLocked(e *entry) {
	if m.ctx == nil || m.ctx.Err() != nil || e.hub == nil {
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	r := &runner{m: m, id: e.rec.Camera.ID, hub: e.hub, cancel: cancel, done: make(chan struct{}), modes: make(chan Recording, 1)}
	e.run = r
	rec := e.rec // read under the lock: Set changes e.rec
	m.wg.Go(func() {
		defer close(r.done)
		r.run(ctx, rec)
	})
}

// List returns the cameras, by stream number.
func (m *Manager) List() []Camera {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Camera, 0, len(m.cameras))
	for _, e := range m.cameras {
		out = append(out, e.camera())
	}
	slices.SortFunc(out, func(a, b Camera) int { return int(a.Stream) - int(b.Stream) })
	return out
}

// Get returns one camera.
func (m *Manager) Get(id string) (Camera, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.cameras[id]
	if !ok {
		return Camera{}, ErrNotFound
	}
	return e.camera(), nil
}

// Hub returns the hub a camera's frames are published into.
func (m *Manager) Hub(id string) (*media.Hub, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.cameras[id]
	switch {
	case !ok:
		return nil, ErrNotFound
	case e.hub == nil:
		return nil, ErrRemoved
	}
	return e.hub, nil
}

// Remove stops pulling the camera and deletes its credential. Unless
// forget is set, the camera stays listed as Removed, without secret, so
// that its recordings can still be found by its ID; forget removes it
// from the list too (its stream number is never reused; the daemon
// deletes the stream's recordings before it forgets the camera).
// Removing a removed camera with forget forgets it.
func (m *Manager) Remove(id string, forget bool) (Camera, error) {
	m.mu.Lock()
	e, ok := m.cameras[id]
	if !ok || (e.hub == nil && !forget) {
		m.mu.Unlock()
		if ok {
			return e.rec.Camera, ErrRemoved
		}
		return Camera{}, ErrNotFound
	}
	r, hub := e.run, e.hub
	e.run, e.hub = nil, nil
	m.mu.Unlock()
	if r != nil {
		r.cancel()
		<-r.done
	}
	if hub != nil {
		hub.Close()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c := e.rec.Camera
	var err error
	if forget {
		delete(m.cameras, id)
		err = m.cat.remove(id)
	} else {
		now := time.Now().UTC().Truncate(time.Second)
		c.State, c.Since, c.RemovedAt, c.LastError = Removed, now, now, ""
		e.rec = record{Camera: c}
		err = m.cat.put(e.rec)
	}
	if err != nil {
		return c, fmt.Errorf("nvr: %w", err)
	}
	m.log.Info("nvr: camera removed", "camera", id, "stream", c.Stream, "forgotten", forget)
	return c, nil
}

// Add adds a camera: a camd camera is paired with its invitation code
// (the NVR becomes one of its users), an RTSP camera is asked for its
// stream once, an ONVIF camera for its stream's address; then it is
// stored and pulled.
func (m *Manager) Add(ctx context.Context, req AddRequest) (Camera, error) {
	n := 0
	for _, s := range []string{req.Code, req.RTSP, req.ONVIF} {
		if strings.TrimSpace(s) != "" {
			n++
		}
	}
	if n != 1 {
		return Camera{}, fmt.Errorf("%w: give exactly one of code, rtsp and onvif", ErrBadRequest)
	}
	if err := checkName(req.Name); err != nil {
		return Camera{}, err
	}
	if req.Recording == "" {
		req.Recording = RecordContinuous
	}
	if err := checkRecording(req.Recording); err != nil {
		return Camera{}, err
	}
	if err := checkShare(req.QuotaShare); err != nil {
		return Camera{}, err
	}
	if req.RTSP != "" && req.Recording == RecordMotion {
		return Camera{}, ErrNoMotion // known before asking the camera
	}
	ctx, cancel := context.WithTimeout(ctx, 3*m.opts.Timeout)
	defer cancel()
	rec := record{Camera: Camera{ID: newID(), Name: req.Name, Recording: req.Recording, QuotaShare: req.QuotaShare, Added: time.Now().UTC().Truncate(time.Second)}}
	var key string
	switch {
	case req.Code != "":
		p, err := pairing.Parse(req.Code)
		if err != nil {
			return Camera{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		key = "camd:" + p.DeviceIDString()
		if err := m.reserve(key); err != nil {
			return Camera{}, err
		}
		defer m.release(key)
		pd, err := pairCamd(ctx, req.Code, req.Addr, m.opts.Name, nil)
		if err != nil {
			return Camera{}, err
		}
		rec.Camera.Kind, rec.Camera.DeviceID, rec.Camera.Address = KindCamd, pd.DeviceID, pd.Addr
		rec.Secret = pd.Secret
		if rec.Camera.Name == "" {
			rec.Camera.Name = "camd " + pd.DeviceID
		}
	case req.RTSP != "":
		clean, user, password, err := splitRTSP(strings.TrimSpace(req.RTSP))
		if err != nil {
			return Camera{}, err
		}
		if req.User != "" {
			user, password = req.User, req.Password
		}
		key = "rtsp:" + clean
		if err := m.reserve(key); err != nil {
			return Camera{}, err
		}
		defer m.release(key)
		if err := probeRTSP(ctx, clean, user, password, m.opts.Timeout, m.log); err != nil {
			return Camera{}, err
		}
		rec.Camera.Kind, rec.Camera.Address = KindRTSP, clean
		rec.Secret = secret{URL: clean, User: user, Password: password}
	default:
		addr := strings.TrimSpace(req.ONVIF)
		key = "onvif:" + addr
		if err := m.reserve(key); err != nil {
			return Camera{}, err
		}
		defer m.release(key)
		cam, err := onvifStreamURI(ctx, addr, req.User, req.Password, m.opts.Timeout)
		if err != nil {
			return Camera{}, err
		}
		clean, user, password, err := splitRTSP(cam.URI)
		if err != nil {
			return Camera{}, fmt.Errorf("%w: the camera's stream address: %w", ErrNoVideo, err)
		}
		if user == "" {
			user, password = req.User, req.Password
		}
		if err := probeRTSP(ctx, clean, user, password, m.opts.Timeout, m.log); err != nil {
			return Camera{}, err
		}
		rec.Camera.Kind, rec.Camera.Address = KindONVIF, addr
		rec.Secret = secret{URL: clean, User: user, Password: password, Events: cam.Events, Media: cam.Media, Profile: cam.Profile}
	}
	if rec.Camera.Recording == RecordMotion && !rec.motionSource() {
		return Camera{}, ErrNoMotion
	}
	if rec.Camera.Name == "" {
		rec.Camera.Name = hostOf(rec.Camera.Address)
	}
	rec.Camera.State, rec.Camera.Since = Connecting, time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cameras == nil {
		return Camera{}, ErrClosed
	}
	if err := m.cat.add(&rec); err != nil {
		return Camera{}, fmt.Errorf("nvr: %w", err)
	}
	e := &entry{rec: rec, hub: media.NewHub(media.HubOptions{})}
	m.cameras[rec.Camera.ID] = e
	m.startLocked(e)
	m.log.Info("nvr: camera added", "camera", rec.Camera.ID, "kind", rec.Camera.Kind, "address", rec.Camera.Address, "stream", rec.Camera.Stream)
	return rec.Camera, nil
}

// reserve marks a camera as being added, so that the same camera added
// twice at once, or again, is refused.
func (m *Manager) reserve(key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.adding[key] {
		return ErrExists
	}
	for _, e := range m.cameras {
		if e.hub != nil && e.key() == key {
			return fmt.Errorf("%w (%s)", ErrExists, e.rec.Camera.ID)
		}
	}
	n := len(m.adding)
	for _, e := range m.cameras {
		if e.hub != nil {
			n++
		}
	}
	if n >= m.opts.MaxCameras {
		return ErrTooMany
	}
	m.adding[key] = true
	return nil
}

func (m *Manager) release(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.adding, key)
}

// camera is the entry's camera with its runner's counters.
func (e *entry) camera() Camera {
	c := e.rec.Camera
	if e.run != nil {
		c.Frames, c.Attempts = e.run.frames.Load(), e.run.attempts.Load()
	}
	return c
}

// key identifies the camera behind a record, whatever its ID.
func (e *entry) key() string {
	switch c := e.rec.Camera; c.Kind {
	case KindCamd:
		return "camd:" + c.DeviceID
	case KindRTSP:
		return "rtsp:" + c.Address
	default:
		return "onvif:" + c.Address
	}
}

// update changes a camera's live fields under the lock.
func (m *Manager) update(id string, fn func(c *Camera)) (Camera, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.cameras[id]
	if !ok {
		return Camera{}, false
	}
	fn(&e.rec.Camera)
	return e.rec.Camera, true
}

func newID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "cam-" + hex.EncodeToString(b)
}

func hostOf(addr string) string {
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		return u.Host
	}
	return addr
}

var errSilent = errors.New("nvr: no frame from the camera")

// Added reports whether a camera the NVR records (removed ones left
// out) is one a LAN search found: a camd camera by its device ID, any
// camera by the address it was added with. GET
// /api/v1/cameras/discovered lists only the cameras not added.
func (m *Manager) Added(id string, addrs []netip.Addr) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.cameras {
		c := e.camera()
		if c.State == Removed {
			continue
		}
		if id != "" && c.DeviceID == id {
			return true
		}
		host := hostOf(c.Address)
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		a, err := netip.ParseAddr(strings.Trim(host, "[]"))
		if err != nil {
			continue
		}
		for _, b := range addrs {
			if a.Unmap() == b.Unmap() {
				return true
			}
		}
	}
	return false
}
