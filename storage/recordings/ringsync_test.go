//go:build linux

package recordings

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/camd-project/camd/internal/faultfs"
)

// TestRingSkipsTheDirectoryFsync: a volume made in a new file fsyncs
// the volumes' directory (its name must reach the card before the
// catalog lists it); one made in the ring's oldest file, reused in
// place, does not (the name is on the card already, and neither the
// directory nor the file's clusters change): one flush of the card fewer
// per volume in the ring. The fsyncs are counted by the FUSE card.
func TestRingSkipsTheDirectoryFsync(t *testing.T) {
	card := faultfs.MountTemp(t)
	const quota, volSize = 4 << 20, 1 << 20
	e := newEnv(t, Options{Dir: filepath.Join(card.Dir, "rec"), Quota: Quota{Bytes: quota}, VolumeSize: volSize})
	// Counted, not failed: every fsync of the volumes' directory.
	setFaults(t, card, faultfs.Fault{Ops: faultfs.Fsync, Files: "rec"})
	rec := &source{Start: day, FrameBytes: 3000, Audio: true}

	// New files until the second volume made in a reused one: the first
	// is made while the last new file still grows (prepareNext).
	for e.store.Stats().Deleted < 2 {
		e.record(rec.fragments(1, time.Second))
	}
	e.store.settled()
	files := volumeFiles(t, e.opts.Dir)
	synced := card.Hits(faultfs.Fsync)
	if len(files) < 3 || synced < uint64(len(files)) {
		t.Fatalf("%d new volume files made with %d fsyncs of their directory, want one each at least", len(files), synced)
	}

	// The ring: volumes made in the same files, again and again.
	deleted := e.store.Stats().Deleted
	ring := rec.fragments(1, 40*time.Second)
	e.record(ring)
	e.store.settled()
	if n := e.store.Stats().Deleted - deleted; n < 3 {
		t.Fatalf("%d volumes made in reused files, want 3 at least", n)
	}
	if now := volumeFiles(t, e.opts.Dir); !maps(files, now) {
		t.Fatalf("the files changed in the ring: %v, then %v", files, now)
	}
	if n := card.Hits(faultfs.Fsync) - synced; n != 0 {
		t.Fatalf("%d fsyncs of the directory while volumes were made in reused files, want 0", n)
	}
	healCard(t, card)
	e.checkStored(ring[len(ring)-5:])
}
