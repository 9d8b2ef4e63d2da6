package device

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/storage/card/cardtest"
	"github.com/camd-project/camd/storage/eventlog"
	"github.com/camd-project/camd/storage/recordings"
	"github.com/camd-project/camd/update"
)

// sseConn is an open GET /api/v1/events/stream.
type sseConn struct {
	*events.Reader
	resp *http.Response
}

func (c sseConn) Close() error { return c.resp.Body.Close() }

// dialStream opens d's event stream as token, resuming after lastID
// unless it is "", and reads up to its first comment: the subscription
// is in place.
func dialStream(ctx context.Context, d *Daemon, client *http.Client, token, lastID string) (sseConn, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+d.Addr().String()+"/api/v1/events/stream", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := client.Do(req)
	if err != nil {
		return sseConn{}, err
	}
	s := sseConn{events.NewReader(resp.Body), resp}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		s.Close()
		return sseConn{}, fmt.Errorf("event stream: %s %s", resp.Status, b)
	}
	if f, err := s.Next(); err != nil || f.Comment != "camd events" {
		s.Close()
		return sseConn{}, fmt.Errorf("the stream's first frame: %+v %v", f, err)
	}
	return s, nil
}

// eventStream is an open event stream that fails its test on errors.
type eventStream struct {
	t testing.TB
	sseConn
}

// streamClient has no time limit (a stream is long) and its own
// connections; http2 chooses the protocol.
func streamClient(http2 bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: http2}
	if !http2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr}
}

// openStream opens d's event stream as token, resuming after lastID
// unless it is "", and waits until the stream is open.
func openStream(t testing.TB, d *Daemon, token, lastID string) *eventStream {
	t.Helper()
	return openStreamWith(t, d, streamClient(true), token, lastID)
}

func openStreamWith(t testing.TB, d *Daemon, client *http.Client, token, lastID string) *eventStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	s, err := dialStream(ctx, d, client, token, lastID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &eventStream{t: t, sseConn: s}
}

// next returns the next event, skipping comments.
func (s *eventStream) next() eventlog.Event {
	s.t.Helper()
	for {
		f, err := s.Next()
		if err != nil {
			s.t.Fatalf("event stream: %v", err)
		}
		if !f.IsEvent() {
			continue
		}
		var e eventlog.Event
		if f.Event != "" || json.Unmarshal([]byte(f.Data), &e) != nil || f.ID != strconv.FormatUint(e.ID, 10) {
			s.t.Fatalf("not an event: %+v", f)
		}
		return e
	}
}

// kinds returns the types of the next n events.
func (s *eventStream) kinds(n int) ([]string, []eventlog.Event) {
	s.t.Helper()
	var kinds []string
	var evs []eventlog.Event
	for range n {
		e := s.next()
		kinds, evs = append(kinds, e.Kind), append(evs, e)
	}
	return kinds, evs
}

// ended reads up to the frame that ends the stream, and checks that the
// stream ends there.
func (s *eventStream) ended() events.Frame {
	s.t.Helper()
	for {
		f, err := s.Next()
		if err != nil {
			s.t.Fatalf("the stream ended (%v) without saying why", err)
		}
		if f.Event == "" {
			continue
		}
		if _, err := s.Next(); err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) {
			s.t.Fatalf("after %+v: %v, want the end", f, err)
		}
		return f
	}
}

func userOf(t *testing.T, d *Daemon, token string) string {
	t.Helper()
	_, b := call(t, d, "GET", "/api/v1/me", token, nil)
	var me struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	json.Unmarshal(b, &me)
	return me.User.ID
}

// A viewer's stream and list hold the media events only, an owner's
// every event: a user paired and revoked, a settings change (which keys,
// by whom), motion and its end.
func TestEventRolesOverHTTPS(t *testing.T) {
	d := running(t, func(c *Config) {
		c.Recording.PostRoll = time.Second
		c.Network.WiFi = "off" // no setup mode's event at its own moment
	})
	ownerToken := owner(t, d)
	viewerToken := viewer(t, d, ownerToken)
	ownerStream := openStream(t, d, ownerToken, "")
	viewerStream := openStream(t, d, viewerToken, "")

	tablet := userOf(t, d, viewer(t, d, ownerToken))
	if code, _ := call(t, d, "DELETE", "/api/v1/users/"+tablet, ownerToken, nil); code != http.StatusNoContent {
		t.Fatalf("revoke: %d", code)
	}
	if code, b := call(t, d, "PATCH", "/api/v1/settings", ownerToken, map[string]any{"mute": true, "motion_sensitivity": 90}); code != 200 {
		t.Fatalf("settings: %d %s", code, b)
	}
	if code, b := call(t, d, "POST", "/api/v1/motion", ownerToken, api.MotionTrigger{Cause: "test", Seconds: 0.1}); code != 200 {
		t.Fatalf("motion: %d %s", code, b)
	}

	kinds, evs := ownerStream.kinds(6)
	if want := []string{"invitation.made", "user.paired", "user.revoked", "settings.changed", "motion", "motion.end"}; !slices.Equal(kinds, want) {
		t.Fatalf("the owner got %v, want %v", kinds, want)
	}
	if e := evs[2]; e.Data["user"] != tablet || e.Data["name"] != "viewer" || e.Camera != d.id.ID {
		t.Errorf("revoked: %+v", e)
	}
	if e := evs[3]; e.Data["keys"] != "motion_sensitivity,mute" || e.Data["by"] != userOf(t, d, ownerToken) || e.Data["by_name"] != "owner" {
		t.Errorf("settings changed: %+v", e)
	}
	if e, end := evs[4], evs[5]; e.Data["cause"] != "test" || end.Data["start"] != strconv.FormatUint(e.ID, 10) || !end.Time.After(e.Time) {
		t.Errorf("motion %+v, then %+v", e, end)
	}
	// The viewer's next events are the motion's: none of the others.
	if kinds, _ := viewerStream.kinds(2); !slices.Equal(kinds, []string{"motion", "motion.end"}) {
		t.Fatalf("the viewer got %v", kinds)
	}

	for token, want := range map[string][]string{
		viewerToken: {"motion.end", "motion"},
		ownerToken:  {"motion.end", "motion", "settings.changed", "user.revoked", "user.paired", "invitation.made", "user.paired", "invitation.made", "user.paired"},
	} {
		_, b := call(t, d, "GET", "/api/v1/events", token, nil)
		var list []eventlog.Event
		json.Unmarshal(b, &list)
		var got []string
		for _, e := range list {
			got = append(got, e.Kind)
		}
		if !slices.Equal(got, want) {
			t.Errorf("list: %v, want %v", got, want)
		}
	}
}

// A phone that reconnects with Last-Event-ID gets exactly what it
// missed, in order, then the live events, none twice.
func TestEventStreamResumesOverHTTPS(t *testing.T) {
	d := running(t)
	ownerToken := owner(t, d)
	mute := false
	change := func() {
		t.Helper()
		mute = !mute
		if code, b := call(t, d, "PATCH", "/api/v1/settings", ownerToken, map[string]any{"mute": mute}); code != 200 {
			t.Fatalf("settings: %d %s", code, b)
		}
	}
	first := openStream(t, d, ownerToken, "")
	for range 3 {
		change()
	}
	_, seen := first.kinds(3)
	first.resp.Body.Close()
	for range 4 {
		change()
	}
	back := openStream(t, d, ownerToken, strconv.FormatUint(seen[2].ID, 10))
	change()
	_, got := back.kinds(5)
	for i, e := range got {
		if e.ID != seen[2].ID+uint64(i)+1 || e.Kind != "settings.changed" {
			t.Fatalf("after %d: event %d is %d %s", seen[2].ID, i, e.ID, e.Kind)
		}
	}
}

// A revoked viewer's stream ends, saying why; the owner's goes on; the
// revoked viewer and a request with no credential are refused.
func TestRevokedViewersStreamEnds(t *testing.T) {
	d := running(t)
	ownerToken := owner(t, d)
	viewerToken := viewer(t, d, ownerToken)
	ownerStream := openStream(t, d, ownerToken, "")
	viewerStream := openStream(t, d, viewerToken, "")
	if code, _ := call(t, d, "DELETE", "/api/v1/users/"+userOf(t, d, viewerToken), ownerToken, nil); code != http.StatusNoContent {
		t.Fatalf("revoke: %d", code)
	}
	if f := viewerStream.ended(); f.Event != "closed" || f.Data != `{"reason":"events: stream ended: access ended"}` {
		t.Fatalf("the revoked viewer's stream ended with %+v", f)
	}
	if e := ownerStream.next(); e.Kind != "user.revoked" {
		t.Fatalf("the owner's stream: %+v", e)
	}
	users := 0 // besides the device's own sinks (no user)
	for _, h := range d.events.bus.Subscriptions() {
		if h.User != "" {
			users++
		}
	}
	if users != 1 {
		t.Fatalf("subscriptions: %+v", d.events.bus.Subscriptions())
	}
	// The revoked viewer, and a request with no credential, get neither
	// the history nor a new stream.
	for _, token := range []string{viewerToken, ""} {
		for _, path := range []string{"/api/v1/events", "/api/v1/events/stream", "/api/v1/events?type=motion"} {
			if code, b := call(t, d, "GET", path, token, nil); code != http.StatusUnauthorized {
				t.Errorf("%s with token %q: %d %s", path, token, code, b)
			}
		}
	}
}

// A stream outlives the read timeout over HTTP/1.1 and HTTP/2, with
// heartbeats while nothing happens; camd's shutdown ends it at once,
// saying so.
func TestEventStreamThroughTheHTTPLimits(t *testing.T) {
	cfg := passthroughConfig(t)
	cfg.HTTP.ReadTimeout = time.Second
	d, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	d.api.Events.Heartbeat = 50 * time.Millisecond // before Run: nothing reads it yet
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	token := owner(t, d)

	var streams []*eventStream
	for _, http2 := range []bool{false, true} {
		s := openStreamWith(t, d, streamClient(http2), token, "")
		if s.resp.ProtoMajor != map[bool]int{false: 1, true: 2}[http2] {
			t.Fatalf("protocol %s", s.resp.Proto)
		}
		streams = append(streams, s)
	}
	for _, s := range streams {
		beats := 0
		start := time.Now()
		for time.Since(start) < 2*cfg.HTTP.ReadTimeout {
			f, err := s.Next()
			if err != nil {
				t.Fatalf("%s: after %d heartbeats in %v: %v", s.resp.Proto, beats, time.Since(start), err)
			}
			if f.Comment == "heartbeat" {
				beats++
			}
		}
		if beats < 10 {
			t.Errorf("%s: %d heartbeats in %v", s.resp.Proto, beats, time.Since(start))
		}
	}
	if code, _ := call(t, d, "PATCH", "/api/v1/settings", token, map[string]any{"mute": true}); code != 200 {
		t.Fatalf("settings: %d", code)
	}
	for _, s := range streams {
		if e := s.next(); e.Kind != "settings.changed" {
			t.Fatalf("%s: %+v", s.resp.Proto, e)
		}
	}
	stopping := time.Now()
	cancel()
	for _, s := range streams {
		if f := s.ended(); f.Event != "closed" {
			t.Fatalf("%s ended with %+v", s.resp.Proto, f)
		}
	}
	<-done
	if took := time.Since(stopping); took > 2*time.Second {
		t.Errorf("camd took %v to stop with two event streams open", took)
	}
}

// The storage watch tells once that the recordings' file system cannot
// hold their quota, and again only after it had room.
func TestStorageNearlyFull(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		st         recordings.Stats
		full, room bool
	}{
		{recordings.Stats{Quota: 1000 * mib, Bytes: 100 * mib, VolumeSize: 10 * mib, FreeBytes: 2000 * mib}, false, true},
		{recordings.Stats{Quota: 1000 * mib, Bytes: 100 * mib, VolumeSize: 10 * mib, FreeBytes: 910 * mib}, false, false},
		{recordings.Stats{Quota: 1000 * mib, Bytes: 100 * mib, VolumeSize: 10 * mib, FreeBytes: 909 * mib}, true, false},
		// At its quota the ring reuses its own space: one volume free is
		// enough.
		{recordings.Stats{Quota: 1000 * mib, Bytes: 1000 * mib, VolumeSize: 10 * mib, FreeBytes: 10 * mib}, false, false},
		{recordings.Stats{Quota: 1000 * mib, Bytes: 1000 * mib, VolumeSize: 10 * mib, FreeBytes: 9 * mib}, true, false},
		{recordings.Stats{Quota: 1000 * mib, Bytes: 1000 * mib, VolumeSize: 10 * mib, FreeBytes: 20 * mib}, false, true},
	} {
		if full, room := nearlyFull(c.st); full != c.full || room != c.room {
			t.Errorf("%+v: full %v, room %v", c.st, full, room)
		}
	}

	st := recordings.Stats{Quota: 1000, Bytes: 0, VolumeSize: 10, FreeBytes: 100}
	d := running(t)
	w := &storageWatch{stats: func() recordings.Stats { return st }, events: d.events}
	told := func() int {
		evs, _ := d.events.log.List(time.Time{}, time.Time{}, "storage.nearly_full", 0)
		return len(evs)
	}
	w.check()
	w.check()
	st.Paused = "card missing"
	st.FreeBytes = 2000
	w.check() // paused: the store says what is wrong
	if n := told(); n != 1 {
		t.Fatalf("told %d times", n)
	}
	st.Paused = ""
	w.check() // room again
	st.FreeBytes = 100
	w.check()
	if n := told(); n != 2 {
		t.Fatalf("told %d times", n)
	}

	// A daemon whose quota is larger than its file system says so at
	// start, to viewers too.
	d = running(t, func(c *Config) { c.Recording.Quota = "1000TiB" })
	ownerToken := owner(t, d)
	viewerToken := viewer(t, d, ownerToken)
	var evs []eventlog.Event
	testenv.Eventually(t, "a storage event", func() bool {
		_, b := call(t, d, "GET", "/api/v1/events?type=storage.*", viewerToken, nil)
		return json.Unmarshal(b, &evs) == nil && len(evs) > 0
	})
	if len(evs) != 1 || evs[0].Kind != "storage.nearly_full" || evs[0].Data["quota_bytes"] != strconv.FormatInt(1000<<40, 10) {
		t.Fatalf("storage events: %+v", evs)
	}
}

// The card's states reach a viewer's stream as they happen: no card at
// start (read after a reconnect from the log), recording resumed when a
// card is mounted (saying what it recovered from), paused when the card
// turns read-only.
func TestCardStatesAreEvents(t *testing.T) {
	sd := filepath.Join(t.TempDir(), "sd")
	if err := os.Mkdir(sd, 0o755); err != nil {
		t.Fatal(err)
	}
	d := running(t, func(c *Config) { c.Recording.Path = filepath.Join(sd, "camd") })
	viewerToken := viewer(t, d, owner(t, d))
	s := openStream(t, d, viewerToken, "0")
	// next returns the next event of kind, checking that the viewer
	// sees only media events on the way.
	next := func(kind string) eventlog.Event {
		t.Helper()
		for {
			e := s.next()
			if !events.Visible(e.Kind, false) {
				t.Fatalf("a viewer got %+v", e)
			}
			if e.Kind == kind {
				return e
			}
		}
	}
	if e := next(events.RecordingPaused); e.Data["reason"] != "no card" || e.Data["present"] != "false" {
		t.Fatalf("paused: %+v", e)
	}
	dev := cardtest.Loop(t, 32<<20, "mkfs.ext4", "-F", "-q")
	cardtest.Mount(t, dev, sd, "-o", "errors=remount-ro")
	if e := next(events.RecordingResumed); e.Data["recovered_from"] != "no card" || e.Data["paused_seconds"] == "" {
		t.Fatalf("resumed: %+v", e)
	}
	cardtest.FailFS(t, dev)
	if e := next(events.RecordingPaused); e.Data["reason"] != "storage read-only" || e.Data["device"] != dev {
		t.Fatalf("paused: %+v", e)
	}
}

// The producers name their events as the catalogue does.
func TestEventTypesOfProducers(t *testing.T) {
	for producer, catalogue := range map[string]string{
		pairing.EventPaired: events.UserPaired, pairing.EventRevoked: events.UserRevoked,
		pairing.EventRenamed: events.UserRenamed, pairing.EventInvited: events.InvitationMade,
		pairing.EventInvitationCancelled: events.InvitationCancelled,
		recordings.EventPaused:           events.RecordingPaused, recordings.EventResumed: events.RecordingResumed,
		recordings.EventQuarantined: events.RecordingQuarantined, recordings.EventMissing: events.RecordingVolumeMissing,
		recordings.EventForeign: events.RecordingForeignFile,
		update.EventAvailable:   events.UpdateAvailable, update.EventRefused: events.UpdateRefused,
		update.EventFailed: events.UpdateFailed, update.EventRebooting: events.UpdateRebooting,
		update.EventInstalled: events.UpdateInstalled, update.EventRolledBack: events.UpdateRolledBack,
	} {
		if producer != catalogue {
			t.Errorf("%q is %q in the catalogue", producer, catalogue)
		}
	}
}

// Events survive a restart: the history lists them, a phone resumes
// from the ID it saw before camd stopped, and new IDs continue after the
// old ones.
func TestEventsSurviveRestart(t *testing.T) {
	data := t.TempDir()
	start := func() (*Daemon, func()) {
		cfg := passthroughConfig(t)
		cfg.Data = data
		cfg.Network.WiFi = "off" // no setup mode's event at each start
		return runningAt(t, cfg)
	}
	list := func(d *Daemon, token, query string) []eventlog.Event {
		t.Helper()
		code, b := call(t, d, "GET", "/api/v1/events"+query, token, nil)
		var evs []eventlog.Event
		if code != http.StatusOK || json.Unmarshal(b, &evs) != nil {
			t.Fatalf("events: %d %s", code, b)
		}
		return evs
	}
	mute := false
	change := func(d *Daemon, token string) {
		t.Helper()
		mute = !mute
		if code, b := call(t, d, "PATCH", "/api/v1/settings", token, map[string]any{"mute": mute}); code != 200 {
			t.Fatalf("settings: %d %s", code, b)
		}
	}

	d, stop := start()
	token := owner(t, d)
	for range 3 {
		change(d, token)
	}
	before := list(d, token, "?after=0")
	stop()

	d, _ = start()
	if after := list(d, token, "?after=0"); len(after) < len(before) || !slices.EqualFunc(before, after[:len(before)], func(a, b eventlog.Event) bool {
		return a.ID == b.ID && a.Kind == b.Kind && a.Time.Equal(b.Time) && a.Data["keys"] == b.Data["keys"]
	}) {
		t.Fatalf("before the restart %+v, after %+v", before, after)
	}
	seen := before[len(before)-3] // the first settings change
	s := openStream(t, d, token, strconv.FormatUint(seen.ID, 10))
	change(d, token)
	_, got := s.kinds(3)
	if got[0].ID != seen.ID+1 || got[1].ID != seen.ID+2 || got[2].ID <= before[len(before)-1].ID || got[2].Kind != events.SettingsChanged {
		t.Fatalf("resumed after %d across the restart: %+v", seen.ID, got)
	}
}

// A phone that keeps reconnecting while events keep being published
// gets every event once, in order: each time it comes back with the
// last ID it saw, the events it missed come from the log and the rest
// live, whatever was being published at the moment it came back.
func TestEventStreamResumesWhilePublishing(t *testing.T) {
	const total, per = 600, 40 // events; events read per connection
	d := running(t)
	token := owner(t, d)
	first, _ := d.events.log.LastID()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range total {
			d.events.add(eventlog.Event{Kind: events.Motion, Data: map[string]string{"i": strconv.Itoa(i)}})
		}
	}()
	last, reconnects := first, 0
	for last < first+total {
		s := openStream(t, d, token, strconv.FormatUint(last, 10))
		for range per {
			if last == first+total {
				break
			}
			e := s.next()
			if e.ID != last+1 {
				t.Fatalf("after %d (connection %d): event %d", last, reconnects, e.ID)
			}
			last = e.ID
		}
		s.resp.Body.Close()
		reconnects++
	}
	<-done
	if reconnects < total/per {
		t.Fatalf("%d connections", reconnects)
	}
}
