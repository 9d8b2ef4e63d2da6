package recordings

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/camd-project/camd/storage/volume"
)

// twoStreams records stream 2 alone for a while (volumes of its own),
// then streams 2 and 3 together (volumes of both), the last one being
// written: what an NVR holds after adding a second camera.
func twoStreams(e *env) (end time.Time) { return twoStreamsOf(e, 3000) }

// twoStreamsOf is twoStreams with pictures of frameBytes for stream 2,
// and a third of that for stream 3.
func twoStreamsOf(e *env, frameBytes int) (end time.Time) {
	a := &source{Start: day, FrameBytes: frameBytes}
	e.record(a.fragments(2, 120*time.Second))
	b := &source{Start: day.Add(120 * time.Second), FrameBytes: frameBytes / 3}
	a2 := &source{Start: day.Add(120 * time.Second), FrameBytes: frameBytes}
	for range 120 {
		e.record(a2.fragments(2, time.Second))
		e.record(b.fragments(3, time.Second))
	}
	return day.Add(240 * time.Second)
}

// streamIn counts stream's fragments in the volume files, read from the
// files themselves.
func streamIn(t *testing.T, e *env, stream uint32) int {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(e.opts.Dir, "vol-*.db"))
	n := 0
	for _, f := range files {
		v, err := volume.Open(f, volume.Options{ReadOnly: true, LockTimeout: time.Millisecond})
		if w := e.store.writerOf(f); errors.Is(err, volume.ErrLocked) && w != nil {
			v = w // a volume being written: the store's handle
		} else if err != nil {
			t.Fatal(err)
		} else {
			defer v.Close()
		}
		err = v.Fragments(stream, 0, func(volume.Fragment) bool { n++; return true })
		if err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// writerOf returns the store's handle of the volume being written in
// file f, or of the next volume made in it beforehand, or nil.
func (s *Store) writerOf(f string) *volume.Volume {
	s.handleMu.RLock()
	for _, w := range s.writers {
		if w.v.Path() == f {
			s.handleMu.RUnlock()
			return w.v
		}
	}
	s.handleMu.RUnlock()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.settle()
	for _, p := range s.next {
		if p.v != nil && p.v.Path() == f {
			return p.v // the next volume, made beforehand
		}
	}
	return nil
}

// checkGone checks that stream 2's recordings are gone, from the
// timeline, clips and the volumes, and that stream 3's are all there.
func checkGone(t *testing.T, e *env, end time.Time) {
	t.Helper()
	tl, err := e.store.Timeline(2, day, end)
	if err != nil || len(tl.Spans) != 0 {
		t.Fatalf("timeline of the deleted stream: %v %+v", err, tl.Spans)
	}
	if _, err := e.store.Clip(2, day, end); !errors.Is(err, ErrNoRecording) {
		t.Fatalf("clip of the deleted stream: %v", err)
	}
	if n := streamIn(t, e, 2); n != 0 {
		t.Fatalf("the volumes still hold %d fragments of the deleted stream", n)
	}
	tl, err = e.store.Timeline(3, day, end)
	if err != nil || len(tl.Spans) != 1 || tl.Recorded < 119*time.Second {
		t.Fatalf("timeline of the other stream: %v %+v", err, tl)
	}
	c, err := e.store.Clip(3, day.Add(120*time.Second), end)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if checkClip(t, c); len(c.Parts()) != 120 {
		t.Fatalf("the other stream's clip has %d parts, want 120", len(c.Parts()))
	}
	pending, err := e.store.pendingDeletions()
	if err != nil || len(pending) != 0 {
		t.Fatalf("deletions left pending: %v %v", pending, err)
	}
}

// TestDeleteStream deletes one of two streams: its volumes of its own
// are deleted whole (their bytes back to the quota), the shared ones
// lose its fragments; the other stream's recordings stay, and recording
// goes on into the volume the deletion freed pages of.
func TestDeleteStream(t *testing.T) {
	e := newEnv(t, Options{VolumeSize: 1 << 20, Quota: Quota{Bytes: 64 << 20}})
	end := twoStreams(e)
	before := e.store.Stats()
	own := 0
	for _, r := range records(t, e) {
		if r.Stream == 2 {
			own++
		}
	}
	n, err := e.store.DeleteStream(2)
	if err != nil {
		t.Fatal(err)
	}
	if n != own {
		t.Fatalf("deleted the stream from %d volumes, want its %d", n, own)
	}
	checkGone(t, e, end)
	after := e.store.Stats()
	if after.Volumes >= before.Volumes || after.Bytes >= before.Bytes {
		t.Fatalf("volumes %d → %d, bytes %d → %d: the stream's own volumes were not deleted",
			before.Volumes, after.Volumes, before.Bytes, after.Bytes)
	}
	// Deleting it again, or a stream never recorded, does nothing.
	for _, s := range []uint32{2, 9} {
		if n, err := e.store.DeleteStream(s); n != 0 || err != nil {
			t.Fatalf("deleting stream %d again: %d %v", s, n, err)
		}
	}
	b := &source{Start: end, FrameBytes: 1000}
	e.record(b.fragments(3, 10*time.Second))
	e.close()
	e.open()
	checkGone(t, e, end)
}

// TestDeleteStreamInterrupted: a crash after the catalog listed the
// deletion and before the volumes lost the stream's fragments (recovery
// reads the active volume's spans again, the stream's among them): the
// next start finishes it.
func TestDeleteStreamInterrupted(t *testing.T) {
	e := newEnv(t, Options{VolumeSize: 1 << 20, Quota: Quota{Bytes: 64 << 20}})
	end := twoStreams(e)
	e.store.writeMu.Lock()
	err := e.store.startDeletion(2)
	e.store.writeMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if tl, _ := e.store.Timeline(2, day, end); len(tl.Spans) != 0 {
		t.Fatalf("listed as deleted, the stream is still in the timeline: %+v", tl.Spans)
	}
	if streamIn(t, e, 2) == 0 {
		t.Fatal("the volumes lost the stream before the deletion ran")
	}
	e.crash()
	checkGone(t, e, end)
}

// TestDeleteStreamWaitsForAnExport: a volume an export reads loses the
// stream's fragments once it is closed (at the next new volume), not
// under the export; the timeline does not show them meanwhile.
func TestDeleteStreamWaitsForAnExport(t *testing.T) {
	e := newEnv(t, Options{VolumeSize: 1 << 20, Quota: Quota{Bytes: 64 << 20}})
	end := twoStreams(e)
	c, err := e.store.Clip(2, day.Add(130*time.Second), day.Add(140*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.DeleteStream(2); err != nil {
		t.Fatal(err)
	}
	if tl, _ := e.store.Timeline(2, day, end); len(tl.Spans) != 0 {
		t.Fatalf("the deleted stream is in the timeline: %+v", tl.Spans)
	}
	if pending, _ := e.store.pendingDeletions(); len(pending[2]) == 0 {
		t.Fatal("the volume being read was not left for later")
	}
	c.Close()
	b := &source{Start: end, FrameBytes: 3000}
	vols := e.store.Stats().Volumes
	for e.store.Stats().Volumes == vols {
		e.record(b.fragments(3, 10*time.Second))
		if b.n > 600 {
			t.Fatal("no new volume")
		}
	}
	if streamIn(t, e, 2) != 0 {
		t.Fatal("the deletion was not finished at the next volume")
	}
}

// TestDeleteStreamFromAMixedVolume: a volume that holds two streams
// (written before volumes were per stream) loses one stream's fragments
// in one transaction and keeps the other's, which read back as recorded.
func TestDeleteStreamFromAMixedVolume(t *testing.T) {
	e := newEnv(t, Options{VolumeSize: 1 << 20, Quota: Quota{Bytes: 64 << 20}})
	e.record((&source{Start: day}).fragments(1, 5*time.Second))
	e.close()
	v, err := volume.Create(filepath.Join(e.opts.Dir, volFile(100)), 100, volume.Options{MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	later := day.Add(time.Hour)
	for stream, src := range map[uint32]*source{1: {Start: later}, 3: {Start: later, FrameBytes: 300}} {
		for i, f := range src.fragments(stream, 20*time.Second) {
			vf := volume.Fragment{Key: volume.Key{Stream: stream, Start: f.Start.UnixNano()}, Duration: f.Duration, Flags: volume.Keyframe}
			var init []byte
			if i == 0 {
				init = f.Init
			}
			if err := v.Append(vf, f.Data, init); err != nil {
				t.Fatal(err)
			}
		}
	}
	v.Close()
	e.open() // adopts the volume, spans of both streams
	if tl, _ := e.store.Timeline(3, later, later.Add(time.Minute)); tl.Recorded != 20*time.Second {
		t.Fatalf("the adopted volume's stream 3: %+v", tl)
	}
	if n, err := e.store.DeleteStream(3); n != 1 || err != nil {
		t.Fatalf("deleted from %d volumes: %v", n, err)
	}
	if n := streamIn(t, e, 3); n != 0 {
		t.Fatalf("%d fragments of stream 3 left", n)
	}
	c, err := e.store.Clip(1, later, later.Add(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if checkClip(t, c); len(c.Parts()) != 20 {
		t.Fatalf("stream 1 in the mixed volume: %d parts", len(c.Parts()))
	}
	if _, err := os.Stat(filepath.Join(e.opts.Dir, volFile(100))); err != nil {
		t.Fatalf("the mixed volume: %v", err)
	}
}
