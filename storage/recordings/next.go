package recordings

import (
	"slices"
	"time"

	"github.com/camd-project/camd/storage/volume"
)

// The next volume of a stream is made beside the writes, not in their
// way (docs/storage.md, "The next volume is made beforehand"). Once the
// volume being written has room for no more than prepareAhead fragments
// of the size just stored, a background job makes the next one: its
// record as being made (the catalog drops the oldest volume when its file
// is reused), the file made or reused in place with its first pages, the
// file fsynced and, for a new file, its directory, then its record as
// ready. When the
// volume being written is full, the append that fills it only swaps the
// handles (switchTo); the records of the two volumes (closed, active)
// are saved by another job. A power cut in between needs no order: a
// start takes a ready volume, the newest of its stream, for the one
// being written, and closes the one before it with its spans read from
// it (recover), as after a cut in the middle of a switch.

// prepareAhead is how many fragments of the size just stored the volume
// being written has room for, at most, when the next one is made.
const prepareAhead = 8

// prep is the next volume of a stream, being made or made.
type prep struct {
	done chan struct{} // closed once the job ended
	// Set by the job before done: the record and the volume made, or
	// err. r is the record it left when it failed after listing it
	// (being made: the next attempt makes it again), else nil.
	r   *vol
	v   *volume.Volume
	err error
}

func (p *prep) finished() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// background runs job in a goroutine after the background jobs started
// before it: the catalog sees their records in the order they were
// made. The caller holds writeMu.
func (s *Store) background(kind string, job func()) {
	prev, done := s.bgLast, make(chan struct{})
	s.bgLast = done
	go func() {
		defer close(done)
		if prev != nil {
			<-prev
		}
		if s.bgHook != nil {
			s.bgHook(kind)
		}
		job()
	}()
}

// settle waits for the background jobs started so far. The caller holds
// writeMu.
func (s *Store) settle() {
	if s.bgLast != nil {
		<-s.bgLast
	}
}

// prepareNext starts making the next volume of stream in the
// background. The caller holds writeMu.
func (s *Store) prepareNext(stream uint32) {
	p := &prep{done: make(chan struct{})}
	s.next[stream] = p
	s.background("prepare", func() {
		defer close(p.done)
		start := time.Now()
		r, reused, err := s.begin(stream, true)
		if err != nil {
			p.err = err
			return
		}
		v, err := s.makeFile(r, fileOf(reused))
		if err != nil {
			p.err = err
			if s.listed(r) {
				p.r = r
			}
			return
		}
		ready := copyVol(r)
		ready.State, ready.Bytes, ready.Created = stateReady, v.Size(), v.Created()
		if err := s.saveRecords([]*vol{ready}, nil); err != nil {
			v.Close()
			p.r, p.err = r, err
			return
		}
		s.replace(ready)
		p.r, p.v = ready, v
		s.log.Debug("recordings: next volume ready", "file", ready.File, "volume", ready.ID, "took", time.Since(start))
	})
}

// listed reports whether r is in the index.
func (s *Store) listed(r *vol) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.record(r.ID) != nil
}

// takePrepared returns the next volume of stream made in the
// background, waiting for the job if it still runs, or nil when there is
// none or it failed (which it logs). The caller holds writeMu.
func (s *Store) takePrepared(stream uint32) *prep {
	p := s.next[stream]
	if p == nil {
		return nil
	}
	delete(s.next, stream)
	<-p.done
	if p.err != nil {
		s.log.Warn("recordings: could not make the next volume beforehand; making it now", "stream", stream, "err", p.err)
		return nil
	}
	return p
}

// switchTo makes the volume p made for stream the one being written, in
// place of the one closed (closeActive): its handle is set, and the
// records (the one before it closed, it active) are saved in the
// background; until they are, the catalog says ready, which a start
// takes for active (recover). The caller holds writeMu.
func (s *Store) switchTo(stream uint32, p *prep) {
	s.setActive(stream, p.v)
	changed := s.handOver(stream, p.r.ID)
	s.background("switch", func() {
		if err := s.saveRecords(changed, nil); err != nil {
			// A start reads the spans from the volumes: nothing is lost.
			s.log.Warn("recordings: cannot list the switch to the next volume", "err", err)
		}
	})
	s.log.Debug("recordings: new volume", "file", p.r.File, "volume", p.r.ID)
}

// handOver lists the ready volume id of stream as active in the index,
// and the active one before it as closed, and returns copies of the
// records changed.
func (s *Store) handOver(stream uint32, id uint64) []*vol {
	s.mu.Lock()
	defer s.mu.Unlock()
	var changed []*vol
	for _, r := range s.vols {
		switch {
		case r.ID == id:
			r.State = stateActive
		case r.Stream == stream && r.State == stateActive && r.ID < id:
			r.State = stateClosed
		default:
			continue
		}
		changed = append(changed, copyVol(r))
	}
	return changed
}

// dropPrepared waits for the background jobs and closes the handles of
// the volumes made for the streams (all of them for none): for closing,
// a deletion, or the card going. What is ready stays listed so; it
// returns the ready ones. The caller holds writeMu.
func (s *Store) dropPrepared(streams ...uint32) map[uint32]*prep {
	s.settle()
	ready := map[uint32]*prep{}
	for st, p := range s.next {
		if len(streams) > 0 && !slices.Contains(streams, st) {
			continue
		}
		delete(s.next, st)
		if p.err == nil {
			p.v.Close()
			ready[st] = p
		}
	}
	return ready
}
