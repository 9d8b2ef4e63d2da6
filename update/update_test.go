package update_test

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/storage/eventlog"
	"github.com/camd-project/camd/update"
	"github.com/camd-project/camd/update/updatetest"
)

// events records the events an updater publishes.
type events struct {
	mu   sync.Mutex
	list []eventlog.Event
	more chan struct{}
}

func newEvents() *events { return &events{more: make(chan struct{}, 100)} }

func (e *events) Add(ev eventlog.Event) (uint64, error) {
	e.mu.Lock()
	e.list = append(e.list, ev)
	id := uint64(len(e.list))
	e.mu.Unlock()
	select {
	case e.more <- struct{}{}:
	default:
	}
	return id, nil
}

func (e *events) kinds() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var k []string
	for _, ev := range e.list {
		k = append(k, ev.Kind)
	}
	return k
}

func (e *events) last() eventlog.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.list) == 0 {
		return eventlog.Event{}
	}
	return e.list[len(e.list)-1]
}

// wait waits for an event of kind and returns it.
func (e *events) wait(t *testing.T, kind string) eventlog.Event {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		e.mu.Lock()
		for _, ev := range e.list {
			if ev.Kind == kind {
				e.mu.Unlock()
				return ev
			}
		}
		e.mu.Unlock()
		select {
		case <-e.more:
		case <-timeout:
			t.Fatalf("no %s event; got %v", kind, e.kinds())
		}
	}
}

type rig struct {
	feed   *updatetest.Feed
	ab     *updatetest.FakeAB
	dir    string
	events *events
}

func newRig(t *testing.T) *rig {
	return &rig{feed: updatetest.NewFeed(t), ab: updatetest.NewFakeAB(t, "1.0.0"), dir: t.TempDir(), events: newEvents()}
}

// updater is the device as booted now: its version is the booted slot's.
func (r *rig) updater(t *testing.T, tweak ...func(*update.Options)) *update.Updater {
	opts := update.Options{
		FeedURL: r.feed.URL(), Keys: []minisign.PublicKey{r.feed.Key}, Version: r.ab.Version(),
		Dir: r.dir, Client: r.feed.Client(), Events: r.events,
		InstallCommand: r.ab.Command("install"), MarkGoodCommand: r.ab.Command("mark-good"),
		RollbackCommand: r.ab.Command("rollback"), RebootCommand: r.ab.Command("reboot"),
		ConfirmTimeout: 200 * time.Millisecond, HealthInterval: 10 * time.Millisecond,
	}
	for _, f := range tweak {
		f(&opts)
	}
	u, err := update.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	u.SetEnabled(true)
	return u
}

// run runs u until the test ends.
func run(t *testing.T, u *update.Updater) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { u.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// installAndReboot publishes version (an image of size bytes), has an
// updater check, apply it and reboot into it, and stops that updater as
// the reboot stops camd. It returns the stopped updater.
func (r *rig) installAndReboot(t *testing.T, version string, size int) *update.Updater {
	t.Helper()
	img := updatetest.Image(version, size)
	r.feed.Publish(updatetest.Manifest(version, 1, img), img)
	u := r.updater(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { u.Run(ctx); close(done) }()
	if _, err := u.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if err := u.Apply(version); err != nil {
		t.Fatal(err)
	}
	r.events.wait(t, update.EventRebooting)
	testenv.Eventually(t, "the reboot", func() bool { return r.ab.Reboots() == 1 })
	cancel()
	<-done
	return u
}

func TestCheckOffersANewerVersion(t *testing.T) {
	r := newRig(t)
	img := updatetest.Image("1.1.0", 100_000)
	r.feed.Publish(updatetest.Manifest("1.1.0", 1, img), img)
	u := r.updater(t)
	for range 2 {
		st, err := u.Check(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if a := st.Available; a == nil || a.Version != "1.1.0" || a.Size != 100_000 || !strings.Contains(a.Notes, "fixes") {
			t.Fatalf("available: %+v", a)
		}
	}
	if k := r.events.kinds(); len(k) != 1 || k[0] != update.EventAvailable {
		t.Fatalf("events: %v, want one %s", k, update.EventAvailable)
	}
	if ev := r.events.last(); ev.Data["version"] != "1.1.0" || ev.Data["size"] != "100000" {
		t.Fatalf("event data: %v", ev.Data)
	}
	// The same version again: nothing to offer, nothing published.
	img = updatetest.Image("1.0.0", 1000)
	r.feed.Publish(updatetest.Manifest("1.0.0", 2, img), img)
	if st, err := u.Check(context.Background()); err != nil || st.Available != nil {
		t.Fatalf("same version: %+v, %v", st.Available, err)
	}
}

// Every malicious feed is refused with an update.refused event naming
// why, and offers nothing.
func TestCheckRefusesBadFeeds(t *testing.T) {
	_, otherKey, _ := minisign.GenerateKey(rand.Reader)
	img := updatetest.Image("1.1.0", 1000)
	cases := []struct {
		name   string
		before func(r *rig) // feeds checked first
		feed   func(r *rig)
		err    error
	}{
		{"another key's signature", nil, func(r *rig) {
			r.feed.PublishRaw(updatetest.Sign(otherKey, updatetest.Manifest("1.1.0", 1, img)))
		}, update.ErrSignature},
		{"content changed after signing", nil, func(r *rig) {
			m := updatetest.Manifest("1.1.0", 1, img)
			_, sig := r.feed.Signed(m)
			m.Image.URL = "https://evil.example/image"
			doc, _ := r.feed.Signed(m)
			r.feed.PublishRaw(doc, sig)
		}, update.ErrSignature},
		{"no signature", nil, func(r *rig) {
			doc, _ := r.feed.Signed(updatetest.Manifest("1.1.0", 1, img))
			r.feed.PublishRaw(doc, nil)
		}, update.ErrSignature},
		{"expired", nil, func(r *rig) {
			m := updatetest.Manifest("1.1.0", 1, img)
			m.Expires = time.Now().Add(-time.Minute)
			r.feed.Publish(m, img)
		}, update.ErrExpired},
		{"replayed (older serial)", func(r *rig) {
			r.feed.Publish(updatetest.Manifest("1.1.0", 7, img), img)
		}, func(r *rig) {
			r.feed.Publish(updatetest.Manifest("1.2.0", 6, img), img)
		}, update.ErrReplayed},
		{"same serial, other content", func(r *rig) {
			r.feed.Publish(updatetest.Manifest("1.1.0", 7, img), img)
		}, func(r *rig) {
			r.feed.Publish(updatetest.Manifest("1.2.0", 7, img), img)
		}, update.ErrReplayed},
		{"downgrade", nil, func(r *rig) {
			r.feed.Publish(updatetest.Manifest("0.9.0", 1, img), img)
		}, update.ErrDowngrade},
		{"another product", nil, func(r *rig) {
			m := updatetest.Manifest("1.1.0", 1, img)
			m.Product = "doorbell-x"
			r.feed.Publish(m, img)
		}, update.ErrProduct},
		{"malformed", nil, func(r *rig) {
			m := updatetest.Manifest("1.1.0", 1, img)
			m.Image.SHA256 = "abc"
			r.feed.Publish(m, img)
		}, update.ErrManifest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t)
			u := r.updater(t)
			if c.before != nil {
				c.before(r)
				if _, err := u.Check(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			c.feed(r)
			st, err := u.Check(context.Background())
			if !errors.Is(err, c.err) {
				t.Fatalf("check: %v, want %v", err, c.err)
			}
			if c.before == nil && st.Available != nil {
				t.Fatalf("offered %+v", st.Available)
			}
			if st.LastError == "" {
				t.Fatal("status has no last_error")
			}
			ev := r.events.last()
			if ev.Kind != update.EventRefused || ev.Data["reason"] != update.Reason(c.err) || ev.Message != err.Error() {
				t.Fatalf("event: %+v", ev)
			}
		})
	}
}

// A wrong hash and a truncated download are refused with an event; the
// truncated one resumes where it stopped on the next apply.
func TestApplyRefusesBadImages(t *testing.T) {
	t.Run("wrong hash", func(t *testing.T) {
		r := newRig(t)
		img := updatetest.Image("1.1.0", 300_000)
		r.feed.Publish(updatetest.Manifest("1.1.0", 1, img), updatetest.Image("1.1.1", 300_000))
		u := r.updater(t)
		run(t, u)
		if _, err := u.Check(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := u.Apply("1.1.0"); err != nil {
			t.Fatal(err)
		}
		if ev := r.events.wait(t, update.EventRefused); ev.Data["reason"] != "hash" || ev.Data["version"] != "1.1.0" {
			t.Fatalf("event: %+v", ev)
		}
		if r.ab.Booted() != "a" || r.ab.Reboots() != 0 {
			t.Fatal("installed a wrong image")
		}
	})
	t.Run("truncated, then resumed", func(t *testing.T) {
		r := newRig(t)
		img := updatetest.Image("1.1.0", 300_000)
		r.feed.Publish(updatetest.Manifest("1.1.0", 1, img), img)
		r.feed.CutAt(100_000)
		u := r.updater(t)
		run(t, u)
		if _, err := u.Check(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := u.Apply("1.1.0"); err != nil {
			t.Fatal(err)
		}
		if ev := r.events.wait(t, update.EventRefused); ev.Data["reason"] != "truncated" {
			t.Fatalf("event: %+v", ev)
		}
		waitIdle(t, u)
		if p := u.Status().Progress; p == nil || p.Done != 100_000 || p.Total != 300_000 {
			t.Fatalf("progress after the cut: %+v", p)
		}
		r.feed.CutAt(0)
		if err := u.Apply("1.1.0"); err != nil {
			t.Fatal(err)
		}
		r.events.wait(t, update.EventRebooting)
		testenv.Eventually(t, "the reboot", func() bool { return r.ab.Reboots() == 1 })
		if r.ab.Version() != "1.1.0" {
			t.Fatalf("booted %s", r.ab.Version())
		}
		if !contains(r.feed.Requests(), "GET /image bytes=100000-") {
			t.Fatalf("no resumed request: %v", r.feed.Requests())
		}
	})
	t.Run("not what the owner approved", func(t *testing.T) {
		r := newRig(t)
		img := updatetest.Image("1.1.0", 1000)
		r.feed.Publish(updatetest.Manifest("1.1.0", 1, img), img)
		u := r.updater(t)
		if err := u.Apply("1.1.0"); !errors.Is(err, update.ErrNoUpdate) {
			t.Fatalf("apply before a check: %v", err)
		}
		u.Check(context.Background())
		if err := u.Apply("1.2.0"); !errors.Is(err, update.ErrApproval) {
			t.Fatalf("apply of another version: %v", err)
		}
	})
}

func waitIdle(t *testing.T, u *update.Updater) {
	t.Helper()
	testenv.Eventually(t, "idle", func() bool { return u.Status().State == update.Idle })
}
func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The whole cycle with the fake A/B layout: check, apply, download,
// install into slot b, reboot into it, health check, mark good; a later
// feed offering the old version is a downgrade.
func TestWholeCycle(t *testing.T) {
	r := newRig(t)
	u := r.installAndReboot(t, "1.1.0", 1<<20)
	if r.ab.Booted() != "b" || r.ab.Primary() != "a" || r.ab.Version() != "1.1.0" {
		t.Fatalf("after the reboot: booted %s, primary %s, version %s", r.ab.Booted(), r.ab.Primary(), r.ab.Version())
	}
	if p := u.Status().Pending; p == nil || p.Version != "1.1.0" || p.From != "1.0.0" {
		t.Fatalf("pending: %+v", p)
	}

	// The next start: healthy, so kept.
	healthChecks := 0
	u = r.updater(t, func(o *update.Options) {
		o.Healthy = func(context.Context) error { healthChecks++; return nil }
	})
	run(t, u)
	ev := r.events.wait(t, update.EventInstalled)
	if ev.Data["version"] != "1.1.0" || ev.Data["from"] != "1.0.0" || healthChecks == 0 {
		t.Fatalf("installed: %+v after %d health checks", ev, healthChecks)
	}
	if r.ab.Primary() != "b" {
		t.Fatalf("slot b not marked good: primary %s", r.ab.Primary())
	}
	waitIdle(t, u)
	if st := u.Status(); st.Pending != nil || st.Version != "1.1.0" {
		t.Fatalf("status: %+v", st)
	}
	// A feed offering 1.0.0 now is a downgrade, even if the running
	// version were older (the floor is the version confirmed).
	old := updatetest.Image("1.0.0", 1000)
	r.feed.Publish(updatetest.Manifest("1.0.0", 2, old), old)
	if _, err := u.Check(context.Background()); !errors.Is(err, update.ErrDowngrade) {
		t.Fatalf("old version: %v", err)
	}
}

// A new version that fails its health check is rolled back: the old
// slot boots again and the event says why.
func TestRollbackWhenUnhealthy(t *testing.T) {
	r := newRig(t)
	r.installAndReboot(t, "1.1.0", 100_000)
	u := r.updater(t, func(o *update.Options) {
		o.Healthy = func(context.Context) error { return errors.New("no frames for 10 s") }
	})
	run(t, u)
	ev := r.events.wait(t, update.EventRolledBack)
	if ev.Data["version"] != "1.1.0" || !strings.Contains(ev.Message, "no frames") {
		t.Fatalf("rolled back: %+v", ev)
	}
	testenv.Eventually(t, "the rollback's reboot", func() bool { return r.ab.Reboots() == 2 })
	if r.ab.Booted() != "a" || r.ab.Version() != "1.0.0" || r.ab.Primary() != "a" {
		t.Fatalf("after the rollback: booted %s (%s), primary %s", r.ab.Booted(), r.ab.Version(), r.ab.Primary())
	}
	// Started again on the old version: nothing pending, the failure shown.
	u = r.updater(t)
	run(t, u)
	if st := u.Status(); st.Pending != nil || st.RolledBack != "1.1.0" || st.Version != "1.0.0" {
		t.Fatalf("status: %+v", st)
	}
}

// A new version that never starts (the bootloader went back to the old
// slot): the next start says so.
func TestRollbackWhenTheNewVersionDidNotStart(t *testing.T) {
	r := newRig(t)
	img := updatetest.Image("1.1.0", 1000)
	r.feed.Publish(updatetest.Manifest("1.1.0", 1, img), img)
	r.ab.Fail("reboot", true)
	u := r.updater(t)
	run(t, u)
	u.Check(context.Background())
	if err := u.Apply("1.1.0"); err != nil {
		t.Fatal(err)
	}
	if ev := r.events.wait(t, update.EventFailed); !strings.Contains(ev.Message, "reboot") {
		t.Fatalf("failed: %+v", ev)
	}
	u2 := r.updater(t, func(o *update.Options) { o.Version = "1.0.0" })
	run(t, u2)
	if ev := r.events.wait(t, update.EventRolledBack); !strings.Contains(ev.Message, "did not start") {
		t.Fatalf("rolled back: %+v", ev)
	}
}

// A new version that is healthy but whose slot cannot be marked good is
// rolled back at the timeout, the hook's failure published once.
func TestRollbackWhenMarkGoodFails(t *testing.T) {
	r := newRig(t)
	r.installAndReboot(t, "1.1.0", 1000)
	r.ab.Fail("mark-good", true)
	u := r.updater(t)
	run(t, u)
	ev := r.events.wait(t, update.EventRolledBack)
	if !strings.Contains(ev.Message, "mark-good failed") {
		t.Fatalf("rolled back: %+v", ev)
	}
	testenv.Eventually(t, "the rollback's reboot", func() bool { return r.ab.Reboots() == 2 })
	if r.ab.Version() != "1.0.0" {
		t.Fatalf("after the rollback: %s", r.ab.Version())
	}
	failed := 0
	for _, k := range r.events.kinds() {
		if k == update.EventFailed {
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("%d %s events: %v", failed, update.EventFailed, r.events.kinds())
	}
}

// A damaged state file is moved aside: camd starts, with a new state.
func TestDamagedStateIsMovedAside(t *testing.T) {
	r := newRig(t)
	if err := os.WriteFile(filepath.Join(r.dir, "state.json"), []byte("{\"last_serial\": 4"), 0o600); err != nil {
		t.Fatal(err)
	}
	u := r.updater(t)
	if st := u.Status(); st.State != update.Idle || st.Available != nil {
		t.Fatalf("status: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(r.dir, "state.json.bad")); err != nil {
		t.Fatalf("not moved aside: %v", err)
	}
	img := updatetest.Image("1.1.0", 1000)
	r.feed.Publish(updatetest.Manifest("1.1.0", 1, img), img)
	if _, err := u.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
}
