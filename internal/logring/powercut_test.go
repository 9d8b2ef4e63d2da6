package logring

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/camd-project/camd/internal/faultfs"
)

func TestFaultFSServer(t *testing.T) { faultfs.Serve(t) }

// checkPrefix reads the ring in dir after a cut: its lines must be
// 1..n without a gap, each whole, n at least durable; and the ring goes
// on from n+1.
func checkPrefix(t *testing.T, dir string, durable uint64) {
	t.Helper()
	r, err := Open(dir, Options{Size: MinSize})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	es, last, err := r.Read(Query{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(es); i++ {
		if es[i].Seq != es[i-1].Seq+1 {
			t.Fatalf("a gap after the cut: %d after %d", es[i].Seq, es[i-1].Seq)
		}
	}
	if last < durable {
		t.Fatalf("the cut lost line %d, synced before it (last %d)", durable, last)
	}
	slog.New(r.Handler()).Info("after the cut")
	if _, next, _ := r.Read(Query{}); next != last+1 {
		t.Fatalf("after the cut the ring went on at %d, want %d", next, last+1)
	}
}

// A power cut, with the card writing any part of what was not synced
// (torn sectors included), at any operation of the ring (appends, syncs,
// a rotation), leaves whole lines in order from the first kept, and
// every line synced before it.
func TestPowerCut(t *testing.T) {
	faultfs.Need(t)
	mnt, backing := t.TempDir(), t.TempDir()
	for n := 1; n <= 40; n++ {
		t.Run(fmt.Sprint("op ", n), func(t *testing.T) {
			card, err := faultfs.MountWith(mnt, backing, faultfs.Options{PowerCut: true})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { card.Unmount() }()
			dir := filepath.Join(mnt, fmt.Sprint("ring", n))
			r, err := Open(dir, Options{Size: MinSize})
			if err != nil {
				t.Fatal(err)
			}
			log := slog.New(r.Handler())
			// Near the end of a segment: the cut comes among appends,
			// fsyncs and a rotation.
			pad := string(make([]byte, 900))
			for range 30 {
				log.Info("before", "pad", pad)
			}
			if err := r.Sync(); err != nil {
				t.Fatal(err)
			}
			card.Settle()
			_, durable, _ := r.Read(Query{Limit: 1})
			card.CutAfter(n)
			for i := range 40 {
				log.Info("during", "i", i, "pad", pad)
			}
			r.Sync()
			card.CutPartly(uint64(n))
			r.Close()
			if card, err = card.PowerUp(); err != nil {
				t.Fatal(err)
			}
			checkPrefix(t, dir, durable)
		})
	}
}
