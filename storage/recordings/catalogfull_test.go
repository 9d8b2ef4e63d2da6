//go:build linux

package recordings

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/camd-project/camd/internal/faultfs"
)

// TestFullCatalogLeavesNoRecordOfADeletedVolume: the catalog shares the
// card's file system (recordings under the data directory), and its
// updates fail with ENOSPC while the store deletes its oldest volumes to
// make room. The volumes go, and so do their records, with the next
// catalog update that succeeds: a restart reports nothing missing.
// Before, the record of a volume deleted then stayed for good, and the
// next start reported its recordings lost.
func TestFullCatalogLeavesNoRecordOfADeletedVolume(t *testing.T) {
	card := faultfs.MountTemp(t)
	e := &env{t: t, dir: card.Dir, opts: Options{VolumeSize: 1 << 20, Quota: Quota{Bytes: 2800 << 10}}}
	e.open()
	t.Cleanup(e.close)
	e.store.noReuse = true // every volume in a new file, the oldest deleted
	rec := &source{Start: day, FrameBytes: 3000}
	e.record(rec.fragments(1, 40*time.Second))
	if e.store.Stats().Deleted == 0 {
		t.Fatal("nothing deleted to fill the quota")
	}
	// Just after a new volume is made: the next deletions are those that
	// make room for it to grow, with no catalog update of its own.
	newest := func() uint64 {
		e.store.mu.Lock()
		defer e.store.mu.Unlock()
		return e.store.vols[len(e.store.vols)-1].ID
	}
	for id := newest(); newest() == id; {
		e.record(rec.fragments(1, time.Second))
	}
	deleted := e.store.Stats().Deleted
	setFaults(t, card, faultfs.Fault{Ops: faultfs.Write | faultfs.Fsync | faultfs.Truncate, Err: syscall.ENOSPC, Files: "catalog.db"})
	for _, f := range rec.fragments(1, 10*time.Second) {
		if err := e.store.Append(f); err != nil {
			t.Fatalf("append while the catalog is full: %v", err)
		}
		if e.store.Stats().Deleted > deleted {
			break
		}
	}
	healCard(t, card)
	if e.store.Stats().Deleted == deleted {
		t.Fatal("no volume deleted while the catalog was full")
	}
	e.close()
	e.open()
	if e.hasEvent(EventMissing) {
		t.Fatalf("a volume deleted is reported missing: %+v", e.eventsOf(EventMissing))
	}
	for _, r := range records(t, e) {
		if _, err := os.Stat(filepath.Join(e.opts.Dir, r.File)); err != nil {
			t.Errorf("a record for a file that is gone: %+v", r)
		}
	}
}
