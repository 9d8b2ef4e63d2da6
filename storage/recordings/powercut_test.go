//go:build linux

package recordings

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/camd-project/camd/internal/faultfs"
	"github.com/camd-project/camd/storage/volume"
)

// The tests in this file cut the power of the card that holds the
// catalog and the volumes: a FUSE file system (faultfs, Options.PowerCut)
// that keeps only what was made durable (a file's data once the file is
// fsynced, a name once its directory is) and, at a cut, drops the rest.
// After each cut the store opens on what the card holds, and must have
// lost nothing it acknowledged (Append returned nil), quarantined
// nothing, and pass bbolt's checks; recording goes on.

// cutEnv is an env on a card whose power can be cut.
type cutEnv struct {
	*env
	card *faultfs.FS
}

func newCutEnv(t *testing.T, opts Options) *cutEnv {
	t.Helper()
	faultfs.Need(t)
	mnt, backing := t.TempDir(), t.TempDir()
	return mountCutEnv(t, mnt, backing, opts)
}

// mountCutEnv mounts backing at mnt and opens the store on it.
func mountCutEnv(t *testing.T, mnt, backing string, opts Options) *cutEnv {
	t.Helper()
	card, err := faultfs.MountWith(mnt, backing, faultfs.Options{PowerCut: true})
	if err != nil {
		t.Fatal(err)
	}
	c := &cutEnv{env: &env{t: t, dir: mnt, opts: opts}, card: card}
	c.opts.Dir = filepath.Join(mnt, "rec")
	t.Cleanup(c.unmount)
	c.open()
	// The card has been in the camera for long: its catalog and
	// directory are durable.
	if err := c.card.Settle(); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *cutEnv) unmount() {
	if c.store != nil {
		c.store.Close()
		c.cat.Close()
		c.store = nil
	}
	if c.card == nil {
		return // PowerUp failed, and said so
	}
	if err := c.card.Unmount(); err != nil {
		c.t.Error(err)
	}
}

// powerCut cuts the power (partly with a seed, see faultfs.CutPartly),
// gives up the store as a dead process would, powers the card up and
// opens the store again.
func (c *cutEnv) powerCut(seed uint64) {
	c.t.Helper()
	var err error
	if seed == 0 {
		err = c.card.Cut()
	} else {
		err = c.card.CutPartly(seed)
	}
	if err != nil {
		c.t.Fatal(err)
	}
	c.store.Close() // its writes fail: the power is off
	c.cat.Close()
	c.store = nil
	if c.card, err = c.card.PowerUp(); err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.events = nil
	c.mu.Unlock()
	c.open()
}

// recordUntilCut appends frags until an append fails (the cut), and
// returns the fragments the store acknowledged.
func (c *cutEnv) recordUntilCut(frags []Fragment) (acked []Fragment) {
	for _, f := range frags {
		if err := c.store.Append(f); err != nil {
			if !errors.Is(err, ErrPaused) {
				c.t.Fatalf("append at the cut: %v", err)
			}
			return acked
		}
		acked = append(acked, f)
	}
	return acked
}

// checkAfterCut checks the store that opened after a cut: no event (nothing
// quarantined, moved aside or missing), not paused, every fragment
// acknowledged since the oldest one kept there with its bytes, the
// newest one kept, the catalog and every volume consistent. It then
// opens the store again and records a fragment of rec, which it returns.
func (c *cutEnv) checkAfterCut(acked []Fragment, rec *source) []Fragment {
	c.t.Helper()
	if k := c.eventKinds(); len(k) != 0 {
		c.t.Fatalf("events after the cut: %v: %+v", k, c.events)
	}
	if err := c.store.Paused(); err != nil {
		c.t.Fatalf("paused after the cut: %v", err)
	}
	st := c.store.Stats()
	if st.Quarantined != 0 {
		c.t.Fatalf("quarantined after the cut: %+v", st)
	}
	if moved, _ := os.ReadDir(filepath.Join(c.opts.Dir, quarantineDir)); len(moved) != 0 {
		c.t.Fatalf("moved aside after the cut: %v", moved)
	}
	c.checkAcked(1, acked, st.Oldest)
	c.checkClosed()
	c.open()
	more := rec.fragments(1, time.Second)
	c.record(more)
	return more
}

// checkClosed closes the store and runs bbolt's checks on the catalog
// and on each of camd's volumes.
func (c *cutEnv) checkClosed() {
	c.t.Helper()
	c.store.Close()
	if err := c.cat.Check(); err != nil {
		c.t.Fatalf("catalog after the cut: %v", err)
	}
	c.cat.Close()
	c.store = nil
	entries, _ := os.ReadDir(c.opts.Dir)
	for _, e := range entries {
		if ownName(e.Name()) {
			if err := volume.Check(filepath.Join(c.opts.Dir, e.Name()), volume.Options{}); err != nil {
				c.t.Fatalf("after the cut: %v", err)
			}
		}
	}
}

// checkAcked checks that every fragment of stream in acked since oldest
// is in the store with its bytes, the last one included.
func (c *cutEnv) checkAcked(stream uint32, acked []Fragment, oldest time.Time) {
	c.t.Helper()
	if len(acked) > 0 {
		last := acked[len(acked)-1]
		tl, err := c.store.Timeline(stream, day, last.Start.Add(time.Hour))
		if err != nil || len(tl.Spans) == 0 {
			c.t.Fatalf("timeline of stream %d: %v %+v", stream, err, tl)
		}
		if newest := tl.Spans[len(tl.Spans)-1].End; newest.Before(last.Start.Add(last.Duration)) {
			c.t.Fatalf("the newest recording ends at %v, the last fragment acknowledged at %v", newest, last.Start.Add(last.Duration))
		}
		var want []Fragment
		for _, f := range acked {
			if !f.Start.Before(oldest) {
				want = append(want, f)
			}
		}
		if len(want) == 0 {
			c.t.Fatalf("nothing acknowledged kept: the oldest recording starts at %v", oldest)
		}
		cl, err := c.store.Clip(stream, want[0].Start, last.Start.Add(last.Duration))
		if err != nil {
			c.t.Fatalf("clip of what was acknowledged: %v", err)
		}
		have := map[int64]int{}
		for i, p := range cl.Parts() {
			have[p.Start.UnixNano()] = i
		}
		for _, f := range want {
			i, ok := have[f.Start.UnixNano()]
			if !ok {
				c.t.Fatalf("fragment at %v acknowledged, lost at the cut", f.Start.Sub(day))
			}
			if b, err := cl.Read(i, nil); err != nil || !bytes.Equal(b, f.Data) {
				c.t.Fatalf("fragment at %v: %v", f.Start.Sub(day), err)
			}
		}
		cl.Close()
	}
}

// sizes of the cut tests: volumes of 1 MiB, four of them in the quota,
// fragments of about 100 KB: a volume holds nine.
var cutOpts = Options{VolumeSize: 1 << 20, Quota: Quota{Bytes: 4 << 20}}

func cutSource() *source { return &source{Start: day, FrameBytes: 3000, Audio: true} }

// TestPowerCutWhileMakingAVolume cuts the power at every operation on the
// card of making a new volume and switching to it. The next volume is
// made in the background, started by an append while the volume being
// written has room for a few more fragments (prepareNext): the
// catalog's record of it being made, the file's creation (or, once the
// volumes fill the quota, the oldest file's reuse), its fsyncs and its
// directory's, the catalog's record of it as ready. The switch comes
// with the append that leaves the full volume no room: its commit, the
// catalog's record of the two volumes (closed, active) in the
// background, and the first fragment in the new one. After each cut the
// store opens on what the card holds with nothing lost or quarantined
// (checkAfterCut): a volume cut half-made is made again, never taken for
// a foreign file.
func TestPowerCutWhileMakingAVolume(t *testing.T) {
	for _, c := range []struct {
		name string
		// volumes before the one made
		full int
	}{{"new file", 1}, {"reused file", 4}} {
		t.Run(c.name, func(t *testing.T) {
			sweepVolumeCreation(t, c.full)
		})
	}
}

// recordSettled appends frags one at a time, each once the background
// jobs of the one before ended, until an append fails (the cut); it
// returns the fragments the store acknowledged.
func (c *cutEnv) recordSettled(frags []Fragment) (acked []Fragment) {
	for _, f := range frags {
		got := c.recordUntilCut([]Fragment{f})
		c.store.settled()
		acked = append(acked, got...)
		if len(got) == 0 {
			break
		}
	}
	return acked
}

func sweepVolumeCreation(t *testing.T, full int) {
	faultfs.Need(t)
	// The append that starts making the volume after the full ones
	// (prep) and the one that switches to it (swap), found on a plain
	// directory: the store behaves the same on the card.
	frags := cutSource().fragments(1, 60*time.Second)
	probe := newEnv(t, cutOpts)
	made, prep, swap := uint64(full+1), -1, -1
	for i, f := range frags {
		probe.record([]Fragment{f})
		probe.store.settled()
		probe.store.mu.Lock()
		listed := probe.store.record(made) != nil
		probe.store.mu.Unlock()
		if listed && prep < 0 {
			prep = i
		}
		if w := probe.store.writing(); w != "" && prep >= 0 && probe.store.writerOf(w).ID() == made {
			swap = i
			break
		}
	}
	if prep < 0 || swap <= prep {
		t.Fatalf("volume %d made at fragment %d, written from %d", made, prep, swap)
	}
	reused := probe.store.Stats().Deleted > 0
	if reused != (full == 4) {
		t.Fatalf("the new volume reused a file: %v", reused)
	}

	// The card with the full volumes on it, as camd left it at a stop.
	template := t.TempDir()
	{
		c := newCutEnv(t, cutOpts)
		c.record(frags[:prep])
		c.unmount()
		copyTree(t, c.card.Backing, template)
	}
	mnt := t.TempDir()
	for _, phase := range []struct {
		name      string
		from, end int // recorded with no cut before from; cut in [from, end)
	}{{"making", prep, prep + 1}, {"switching", swap, swap + 2}} {
		ops := 0
		for n := 1; ; n++ {
			// A strict cut, then at the same point a card that wrote
			// some of what was not durable on its own.
			off := false
			for _, seed := range []uint64{0, uint64(n)} {
				backing := t.TempDir()
				copyTree(t, template, backing)
				c := mountCutEnv(t, mnt, backing, cutOpts)
				c.recordSettled(frags[prep:phase.from])
				before, _, _ := c.card.Operations()
				if err := c.card.CutAfter(n); err != nil {
					t.Fatal(err)
				}
				acked := append(frags[:phase.from:phase.from], c.recordSettled(frags[phase.from:phase.end])...)
				var after int
				after, off, _ = c.card.Operations()
				if !off {
					ops = after - before
					c.unmount()
					break
				}
				c.powerCut(seed)
				t.Run(fmt.Sprintf("%s op %d seed %d", phase.name, n, seed), func(t *testing.T) {
					c.t = t
					c.checkAfterCut(acked, &source{Start: frags[phase.end].Start, FrameBytes: 3000, Audio: true})
				})
				c.t = t
				c.unmount()
				if t.Failed() {
					return
				}
			}
			if !off {
				break
			}
		}
		if ops < 10 {
			t.Fatalf("%s the volume made %d operations", phase.name, ops)
		}
		t.Logf("%s: %d crash points", phase.name, ops)
	}
}

// TestPowerCutsWhileRecording cuts the power at random while recording
// fills the quota many times over (new volumes, reused files, deleted
// ones), strictly or as a card that wrote part of what was not durable:
// after each cut nothing acknowledged is lost and nothing quarantined.
func TestPowerCutsWhileRecording(t *testing.T) {
	rec := cutSource()
	cutsWhileRecording(t, rand.New(rand.NewPCG(12, 34)), rec, 16, func(c *cutEnv, _ *rand.Rand) []Fragment {
		var acked []Fragment
		for {
			got := c.recordUntilCut(rec.fragments(1, 10*time.Second))
			acked = append(acked, got...)
			if len(got) < 10 {
				return acked
			}
		}
	})
}

// cutsWhileRecording cuts the power cuts times, at random, while record
// records stream 1 of rec until the cut (returning what the store
// acknowledged), and checks after each cut that nothing acknowledged is
// lost and nothing quarantined; the quota must have filled.
func cutsWhileRecording(t *testing.T, rng *rand.Rand, rec *source, cuts int, record func(*cutEnv, *rand.Rand) []Fragment) {
	c := newCutEnv(t, cutOpts)
	var acked []Fragment
	for cut := range cuts {
		if err := c.card.CutAfter(1 + rng.IntN(150)); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, record(c, rng)...)
		seed := uint64(0)
		if cut%2 == 1 {
			seed = rng.Uint64()
		}
		c.powerCut(seed)
		acked = append(acked, c.checkAfterCut(acked, rec)...)
	}
	if st := c.store.Stats(); !st.Oldest.After(day) {
		t.Fatalf("the quota never filled: %+v", st)
	}
}

// TestPowerCutsWhileRecordingTwoStreams: as TestPowerCutsWhileRecording,
// with two streams at different rates, each in volumes of its own: after
// each cut, each stream has every fragment acknowledged since its own
// oldest recording, and the quiet one kept more of its history than the
// busy one.
func TestPowerCutsWhileRecordingTwoStreams(t *testing.T) {
	c := newCutEnv(t, Options{VolumeSize: 1 << 20, Quota: Quota{Bytes: 6 << 20}})
	rng := rand.New(rand.NewPCG(56, 78))
	recs := map[uint32]*source{1: cutSource(), 2: {Start: day, FrameBytes: 1000}}
	acked := map[uint32][]Fragment{}
	for cut := range 10 {
		for range 20 {
			for _, stream := range []uint32{1, 2} {
				f := recs[stream].fragments(stream, time.Second)
				c.record(f)
				acked[stream] = append(acked[stream], f...)
			}
		}
		if err := c.card.CutAfter(1 + rng.IntN(150)); err != nil {
			t.Fatal(err)
		}
	recording:
		for {
			for _, stream := range []uint32{1, 2} {
				got := c.recordUntilCut(recs[stream].fragments(stream, time.Second))
				acked[stream] = append(acked[stream], got...)
				if len(got) == 0 {
					break recording
				}
			}
		}
		seed := uint64(0)
		if cut%2 == 1 {
			seed = rng.Uint64()
		}
		c.powerCut(seed)
		if k := c.eventKinds(); len(k) != 0 || c.store.Paused() != nil || c.store.Stats().Quarantined != 0 {
			t.Fatalf("after cut %d: events %v, paused %v, %+v", cut, k, c.store.Paused(), c.store.Stats())
		}
		oldest := map[uint32]time.Time{}
		for _, stream := range []uint32{1, 2} {
			last := acked[stream][len(acked[stream])-1]
			tl, _ := c.store.Timeline(stream, day, last.Start.Add(time.Hour))
			if len(tl.Spans) == 0 {
				t.Fatalf("after cut %d: nothing of stream %d", cut, stream)
			}
			oldest[stream] = tl.Spans[0].Start
			c.checkAcked(stream, acked[stream], oldest[stream])
		}
		if cut == 9 && !oldest[2].Before(oldest[1]) {
			t.Fatalf("the quiet stream's history starts at %v, the busy one's at %v", oldest[2], oldest[1])
		}
	}
	c.checkClosed()
	c.open()
}
