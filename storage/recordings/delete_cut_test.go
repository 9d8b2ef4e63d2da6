//go:build linux

package recordings

import (
	"fmt"
	"testing"
	"time"
)

// TestPowerCutWhileDeletingAStream cuts the power at every operation on
// the card of a DeleteStream (the catalog's commit, each volume's
// transaction, the removal of the stream's own volumes), strictly and as
// a card that wrote part of what was not durable. After each cut the
// store opens with nothing quarantined or reported missing, every volume
// passes bbolt's check, the other stream's recordings are whole, and the
// deleted stream is either all there (the cut came before the catalog
// listed the deletion) or, once the start finished the deletion, gone
// from the timeline and from every volume.
func TestPowerCutWhileDeletingAStream(t *testing.T) {
	opts := Options{VolumeSize: 1 << 20, Quota: Quota{Bytes: 64 << 20}}
	template := t.TempDir()
	var end time.Time
	{
		c := newCutEnv(t, opts)
		end = twoStreamsOf(c.env, 300)
		if c.store.Stats().Volumes < 3 {
			t.Fatalf("%d volumes: want some of stream 2 alone and some shared", c.store.Stats().Volumes)
		}
		c.unmount()
		copyTree(t, c.card.Backing, template)
	}
	mnt := t.TempDir()
	for n := 1; ; n++ {
		done := false
		for _, seed := range []uint64{0, uint64(n)} {
			backing := t.TempDir()
			copyTree(t, template, backing)
			c := mountCutEnv(t, mnt, backing, opts)
			if err := c.card.CutAfter(n); err != nil {
				t.Fatal(err)
			}
			c.store.DeleteStream(2)
			if _, off, _ := c.card.Operations(); !off {
				c.unmount()
				t.Logf("%d crash points", n-1)
				done = true
				break
			}
			c.powerCut(seed)
			t.Run(fmt.Sprintf("op %d seed %d", n, seed), func(t *testing.T) {
				c.t = t
				checkDeletionAfterCut(t, c, end)
			})
			c.t = t
			c.unmount()
			if t.Failed() {
				return
			}
		}
		if done {
			if n < 10 {
				t.Fatalf("the deletion made %d operations", n-1)
			}
			return
		}
	}
}

func checkDeletionAfterCut(t *testing.T, c *cutEnv, end time.Time) {
	if k := c.eventKinds(); len(k) != 0 {
		t.Fatalf("events after the cut: %v", c.events)
	}
	if st := c.store.Stats(); st.Quarantined != 0 || c.store.Paused() != nil {
		t.Fatalf("after the cut: %+v", st)
	}
	tl, err := c.store.Timeline(2, day, end)
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.Spans) != 0 {
		// Not listed as deleted before the cut: all of it is there.
		if tl.Recorded < 239*time.Second {
			t.Fatalf("the stream kept %v of 240 s", tl.Recorded)
		}
		if n := streamIn(t, c.env, 2); n != 240 {
			t.Fatalf("the stream kept %d of 240 fragments", n)
		}
		if _, err := c.store.DeleteStream(2); err != nil {
			t.Fatal(err)
		}
	}
	checkGone(t, c.env, end)
	c.checkClosed()
	c.open()
}
