//go:build linux

package recordings

import (
	"errors"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/camd-project/camd/internal/faultfs"
)

// The tests in this file hand the store fragments in batches, as the
// recorder does when fragments waited for a slow commit (AppendBatch).

// recordBatch appends frags in one batch and fails the test unless all
// are stored.
func (e *env) recordBatch(frags []Fragment) {
	e.t.Helper()
	if n, err := e.store.AppendBatch(frags); n != len(frags) || err != nil {
		e.t.Fatalf("AppendBatch of %d: %d stored: %v", len(frags), n, err)
	}
}

// writing returns the file of stream 1's volume being written.
func (s *Store) writing() string {
	s.handleMu.RLock()
	defer s.handleMu.RUnlock()
	if w := s.writers[1]; w != nil {
		return w.v.Path()
	}
	return ""
}

// checkStored reopens the store and checks that frags, and nothing after
// them, are in it with their bytes.
func (e *env) checkStored(frags []Fragment) {
	e.t.Helper()
	e.close()
	e.open()
	first, last := frags[0], frags[len(frags)-1]
	end := last.Start.Add(last.Duration)
	tl, err := e.store.Timeline(1, day, end.Add(time.Hour))
	if err != nil || len(tl.Spans) == 0 || !tl.Spans[len(tl.Spans)-1].End.Equal(end) {
		e.t.Fatalf("timeline after reopening: %v %+v, want it to end at %v", err, tl, end)
	}
	cl, err := e.store.Clip(1, first.Start, end)
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	checkClip(e.t, cl)
	if n := len(cl.Parts()); n != len(frags) {
		e.t.Fatalf("%d fragments stored, %d after reopening", len(frags), n)
	}
}

// TestBatchIsOneCommit: a batch is one commit of its volume (two
// fsyncs, whatever it holds); a batch that fills the volume in its
// middle stores what fits in one commit there and the rest in the next
// volume, and everything stored is there after reopening.
func TestBatchIsOneCommit(t *testing.T) {
	card := faultfs.MountTemp(t)
	e := newEnv(t, Options{Dir: filepath.Join(card.Dir, "rec"), VolumeSize: 1 << 20, Quota: Quota{Bytes: 1 << 30}})
	rec := &source{Audio: true, Start: day, FrameBytes: 1000} // 35 KB: about 21 in a volume
	all := rec.fragments(1, 2*time.Second)
	e.record(all) // the first volume made
	first := e.store.writing()
	// Counted, not failed: every fsync of the first volume's file.
	setFaults(t, card, faultfs.Fault{Ops: faultfs.Fsync, Files: filepath.Base(first)})
	batch := rec.fragments(1, 6*time.Second)
	e.recordBatch(batch)
	all = append(all, batch...)
	if n := card.Hits(faultfs.Fsync); n != 2 {
		t.Fatalf("a batch of %d fragments took %d fsyncs of its volume, want 2 (one commit)", len(batch), n)
	}
	// More than the room left, less than a volume.
	batch = rec.fragments(1, 25*time.Second)
	e.recordBatch(batch)
	all = append(all, batch...)
	if n := card.Hits(faultfs.Fsync); n != 4 {
		t.Fatalf("the batch that filled the volume took %d fsyncs of it, want 2 (one commit)", n-2)
	}
	if e.store.writing() == first {
		t.Fatal("a batch larger than the room left stayed in its volume")
	}
	if st := e.store.Stats(); st.Volumes != 2 || st.Fragments != uint64(len(all)) || st.Dropped != 0 {
		t.Fatalf("stats after the batches: %+v", st)
	}
	healCard(t, card)
	e.checkStored(all)
}

// TestBatchMeetsAFullCard: another program filled the card, and a batch
// needs the next volume: camd's oldest volumes go, as for one fragment,
// and the whole batch is stored.
func TestBatchMeetsAFullCard(t *testing.T) {
	card := mountTmpfs(t, "8m")
	e := newEnv(t, Options{Dir: filepath.Join(card, "rec"), VolumeSize: 1 << 20, Quota: Quota{Bytes: 1 << 30}})
	rec := &source{Start: day, FrameBytes: 3000}
	e.record(rec.fragments(1, 30*time.Second))
	before := e.store.Stats()
	fill(t, filepath.Join(card, "their-file"))
	batch := rec.fragments(1, 15*time.Second) // more than a volume holds
	e.recordBatch(batch)
	st := e.store.Stats()
	if st.Paused != "" || st.Deleted <= before.Deleted || !st.Newest.Equal(batch[len(batch)-1].Start.Add(time.Second)) {
		t.Fatalf("before %+v\nafter %+v", before, st)
	}
	e.checkStored(batch)
}

// TestBatchOnAFailingCard: the card fails in the middle of a batch (the
// next volume cannot be made, or the commit fails): what was committed
// before is stored and counted, the rest is dropped and counted so, the
// error says why, and after reopening the store holds exactly what it
// said it stored.
func TestBatchOnAFailingCard(t *testing.T) {
	for _, c := range []struct {
		name  string
		fault faultfs.Fault
		// midway: part of the batch is stored (the fault hits only the
		// next volume).
		midway bool
	}{
		{"card failing at the next volume", faultfs.Fault{Ops: faultfs.Create, Err: syscall.EIO}, true},
		{"card gone at the next volume", faultfs.Fault{Ops: faultfs.Create, Err: syscall.ENODEV}, true},
		{"commit fails", faultfs.Fault{Ops: faultfs.Fsync, Err: syscall.EIO}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			card := faultfs.MountTemp(t)
			e := newEnv(t, Options{Dir: filepath.Join(card.Dir, "rec"), VolumeSize: 1 << 20, Quota: Quota{Bytes: 1 << 30}})
			rec := &source{Audio: true, Start: day, FrameBytes: 1000}
			all := rec.fragments(1, 5*time.Second)
			e.record(all)
			before := e.store.Stats()
			setFaults(t, card, c.fault)
			batch := rec.fragments(1, 40*time.Second)
			n, err := e.store.AppendBatch(batch)
			if !errors.Is(err, ErrPaused) || !errors.Is(err, c.fault.Err) {
				t.Fatalf("AppendBatch on a failing card: %d stored, err %v", n, err)
			}
			if c.midway != (n > 0) || n >= len(batch) {
				t.Fatalf("%d of %d stored before the card failed", n, len(batch))
			}
			st := e.store.Stats()
			if st.Fragments != before.Fragments+uint64(n) || st.Dropped != uint64(len(batch)-n) || st.Paused == "" {
				t.Fatalf("%d stored of %d: stats %+v", n, len(batch), st)
			}
			healCard(t, card)
			e.checkStored(append(all, batch[:n]...))
		})
	}
}

// TestPowerCutsWhileRecordingBatches: as TestPowerCutsWhileRecording,
// with fragments handed over in batches of 1 to 5: after each cut every
// fragment of the batches' stored parts is there.
func TestPowerCutsWhileRecordingBatches(t *testing.T) {
	rec := cutSource()
	cutsWhileRecording(t, rand.New(rand.NewPCG(90, 12)), rec, 12, func(c *cutEnv, rng *rand.Rand) []Fragment {
		var acked []Fragment
		for {
			batch := rec.fragments(1, time.Duration(1+rng.IntN(5))*time.Second)
			n, err := c.store.AppendBatch(batch)
			acked = append(acked, batch[:n]...)
			if err != nil {
				if !errors.Is(err, ErrPaused) {
					t.Fatalf("append at the cut: %v", err)
				}
				return acked
			}
		}
	})
}
