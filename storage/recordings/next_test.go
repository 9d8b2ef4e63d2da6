package recordings

import (
	"os"
	"sync"
	"testing"
	"time"

	"github.com/camd-project/camd/internal/testenv"
)

// settled waits for the store's background jobs (prepareNext, switchTo).
func (s *Store) settled() {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.settle()
}

// writerFits reports whether stream 1's volume being written has room
// for n more bytes.
func (s *Store) writerFits(t testing.TB, n int) bool {
	t.Helper()
	s.handleMu.RLock()
	defer s.handleMu.RUnlock()
	w := s.writers[1]
	if w == nil {
		t.Fatal("no volume being written")
	}
	fits, err := w.v.Fits(n)
	if err != nil {
		t.Fatal(err)
	}
	return fits
}

// catalogRecords returns the volumes' records as the catalog has them.
func catalogRecords(t testing.TB, e *env) []*vol {
	t.Helper()
	recs, err := e.store.readRecords()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestNextVolumeIsMadeBeforehand: while the volume being written still
// has room for a few fragments, the next one is made in the background
// and listed as ready; the append that leaves the volume no room for
// another fragment switches to it, and the next fragment is stored in it.
func TestNextVolumeIsMadeBeforehand(t *testing.T) {
	e := newEnv(t, Options{VolumeSize: 1 << 20, Quota: Quota{Bytes: 64 << 20}})
	rec := &source{Start: day, FrameBytes: 3000}
	ready := false
	for range 60 {
		f := rec.fragments(1, time.Second)
		e.record(f)
		e.store.settled()
		recs := catalogRecords(t, e)
		switch {
		case len(recs) == 1:
			if ready {
				t.Fatalf("the next volume is gone: %+v", recs)
			}
		case len(recs) == 2 && recs[0].State == stateActive && recs[1].State == stateReady:
			if !e.store.writerFits(t, len(f[0].Data)) {
				t.Fatalf("the next volume was made when the first was full")
			}
			if e.store.writing() != e.store.opts.Dir+"/"+recs[0].File || len(recs[1].Spans) != 0 {
				t.Fatalf("writing %s: %+v", e.store.writing(), recs)
			}
			ready = true
		case ready && len(recs) == 2 && recs[0].State == stateClosed && recs[1].State == stateActive && len(recs[1].Spans) == 0:
			// The append that left no room switched.
			if e.store.writing() != e.store.opts.Dir+"/"+recs[1].File {
				t.Fatalf("writing %s: %+v", e.store.writing(), recs)
			}
			e.record(rec.fragments(1, time.Second))
			e.store.settled()
			if recs := records(t, e); len(recs) < 2 || recs[1].State != stateActive || len(recs[1].Spans) != 1 {
				t.Fatalf("the next fragment is not in the volume made for it: %+v", recs)
			}
			return
		default:
			t.Fatalf("records: %+v", recs)
		}
	}
	t.Fatal("the first volume never filled")
}

// TestAppendsDoNotWaitForTheNextVolume: a card that takes long to make
// the next volume (here a job held up before it begins) delays no
// append while the volume being written has room: the append that
// leaves it no room for another fragment returns too. The first that
// does not fit waits for the next volume. And the catalog's update of
// the switch (the volumes closed and active) delays no append either: a
// crash before it loses nothing, the start goes on in the new volume.
func TestAppendsDoNotWaitForTheNextVolume(t *testing.T) {
	e := newEnv(t, Options{VolumeSize: 1 << 20, Quota: Quota{Bytes: 64 << 20}})
	rec := &source{Start: day, FrameBytes: 3000}
	hold := map[string]chan struct{}{"prepare": make(chan struct{}), "switch": make(chan struct{})}
	var once sync.Map
	release := func(kind string) {
		o, _ := once.LoadOrStore(kind, &sync.Once{})
		o.(*sync.Once).Do(func() { close(hold[kind]) })
	}
	// A failure lets the jobs go, or closing the store would wait for
	// them for ever.
	t.Cleanup(func() { release("prepare"); release("switch") })
	held := make(chan string, 10)
	e.store.bgHook = func(kind string) {
		held <- kind
		<-hold[kind]
	}
	appended := func(f Fragment) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- e.store.Append(f) }()
		var err error
		testenv.Eventually(t, "the append returns", func() bool {
			select {
			case err = <-done:
				return true
			default:
				return false
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var acked []Fragment
	next := func() Fragment {
		f := rec.fragments(1, time.Second)[0]
		acked = append(acked, f)
		return f
	}

	// Until the volume being written has no room for another fragment,
	// with the next volume held up from the first append that started
	// it.
	probe := *rec
	size := len(probe.fragments(1, time.Second)[0].Data)
	started := false
	for len(acked) == 0 || e.store.writerFits(t, size) {
		appended(next())
		select {
		case kind := <-held:
			if kind != "prepare" {
				t.Fatalf("job %s", kind)
			}
			started = true
		default:
		}
		if len(acked) > 30 {
			t.Fatal("the volume never filled")
		}
	}
	if !started {
		t.Fatal("the next volume was not started beforehand")
	}
	first := e.store.writing()
	if recs := catalogRecords(t, e); len(recs) != 1 {
		t.Fatalf("the next volume is listed before its job ran: %+v", recs)
	}
	// A fragment that does not fit waits for the next volume: the one
	// made beforehand, none made meanwhile.
	big := next()
	big.Data = fragmentData(1, big.Start, 3*size)
	acked[len(acked)-1] = big
	done := make(chan error, 1)
	go func() { done <- e.store.Append(big) }()
	release("prepare")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if recs := records(t, e); len(recs) != 2 || recs[1].State != stateActive || len(recs[1].Spans) != 1 {
		t.Fatalf("the fragment that did not fit is not alone in the volume made for it: %+v", recs)
	}
	if w := e.store.writing(); w == first {
		t.Fatalf("still writing %s", w)
	}
	// The switch's catalog update is held up: appends go on.
	if kind := <-held; kind != "switch" {
		t.Fatalf("job %s", kind)
	}
	appended(next())
	if recs := catalogRecords(t, e); len(recs) != 2 || recs[0].State != stateActive || recs[1].State != stateReady {
		t.Fatalf("catalog before the switch's update: %+v", recs)
	}

	// A crash now: the catalog says the full volume is the one being
	// written and the next one ready.
	crashed := t.TempDir()
	copyTree(t, e.dir, crashed)
	release("switch")
	e.store.Close()
	e.cat.Close()
	e.store = nil
	os.RemoveAll(e.dir)
	copyTree(t, crashed, e.dir)
	e.open()
	if k := e.eventKinds(); len(k) != 0 {
		t.Fatalf("events after the crash: %v", k)
	}
	recs := catalogRecords(t, e)
	if len(recs) != 2 || recs[0].State != stateClosed || recs[1].State != stateActive || len(recs[0].Spans) != 1 || len(recs[1].Spans) != 1 {
		t.Fatalf("records after the crash: %+v", recs)
	}
	if w := e.store.writing(); w != e.opts.Dir+"/"+recs[1].File {
		t.Fatalf("writing %s after the crash: %+v", w, recs)
	}
	e.store.bgHook = nil
	e.checkStored(acked)
}
