package calls

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// recorder keeps the transitions told.
type recorder struct {
	mu sync.Mutex
	ts []Transition
}

func (r *recorder) notify(t Transition) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ts = append(r.ts, t)
}

// states returns "from>to" of each transition told.
func (r *recorder) states() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, t := range r.ts {
		out = append(out, string(t.From)+">"+string(t.To))
	}
	return out
}

func (r *recorder) last() Transition {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ts[len(r.ts)-1]
}

func newManager(phones ...string) (*Manager, *recorder) {
	rec := &recorder{}
	m := New(Options{Notify: rec.notify, Phones: func() []string { return phones }})
	return m, rec
}

func TestRingAnswerHangup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, rec := newManager("alice", "bob")
		defer m.Close()
		c, err := m.Ring("doorbell", "")
		if err != nil {
			t.Fatal(err)
		}
		if c.State != Ringing || !slices.Equal(c.Phones, []string{"alice", "bob"}) {
			t.Fatalf("rang: %+v", c)
		}
		time.Sleep(5 * time.Second)
		a, err := m.Answer(c.ID, "bob")
		if err != nil || a.State != Answered || a.AnsweredBy != "bob" || a.Answered.Sub(a.Started) != 5*time.Second {
			t.Fatalf("answer: %+v, %v", a, err)
		}
		if _, err := m.Answer(c.ID, "alice"); !errors.Is(err, ErrAnsweredElsewhere) {
			t.Fatalf("second answer: %v, want ErrAnsweredElsewhere", err)
		}
		if _, err := m.Decline(c.ID, "alice", false); !errors.Is(err, ErrAnsweredElsewhere) {
			t.Fatalf("decline after answer: %v, want ErrAnsweredElsewhere", err)
		}
		if _, err := m.Hangup(c.ID, "alice", ""); !errors.Is(err, ErrNotAnswerer) {
			t.Fatalf("another user's hangup: %v, want ErrNotAnswerer", err)
		}
		// Past the ring timeout: an answered call is not missed.
		time.Sleep(time.Minute)
		e, err := m.Hangup(c.ID, "bob", "")
		if err != nil || e.State != Ended || e.Reason != ReasonHungUp {
			t.Fatalf("hangup: %+v, %v", e, err)
		}
		if got, want := rec.states(), []string{">ringing", "ringing>answered", "answered>ended"}; !slices.Equal(got, want) {
			t.Fatalf("transitions %v, want %v", got, want)
		}
		if l := rec.last(); l.User != "bob" || l.Reason != ReasonHungUp || l.Call.ID != c.ID || !l.Time.Equal(e.Finished) {
			t.Fatalf("ended transition: %+v", l)
		}
		if _, ok := m.Current(); ok {
			t.Fatal("a call is still current")
		}
		if h := m.History(); len(h) != 1 || h[0].ID != c.ID || h[0].State != Ended {
			t.Fatalf("history %+v", h)
		}
		// A new call may ring now.
		if _, err := m.Ring("api", "alice"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRingTimeoutMisses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, rec := newManager("alice")
		defer m.Close()
		c, _ := m.Ring("doorbell", "")
		time.Sleep(30*time.Second - time.Millisecond)
		synctest.Wait()
		if cur, ok := m.Current(); !ok || cur.State != Ringing {
			t.Fatalf("before the timeout: %+v %v", cur, ok)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		got, err := m.Get(c.ID)
		if err != nil || got.State != Missed || got.Reason != ReasonTimeout || got.Finished.Sub(got.Started) != 30*time.Second {
			t.Fatalf("after the timeout: %+v, %v", got, err)
		}
		if l := rec.last(); l.To != Missed || l.User != "" {
			t.Fatalf("missed transition %+v", l)
		}
		if _, err := m.Answer(c.ID, "alice"); !errors.Is(err, ErrOver) {
			t.Fatalf("answer to a missed call: %v, want ErrOver", err)
		}
	})
}

func TestMaxDurationEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		m := New(Options{Notify: rec.notify, RingTimeout: 10 * time.Second, MaxDuration: time.Minute})
		defer m.Close()
		c, _ := m.Ring("api", "owner")
		time.Sleep(9 * time.Second)
		m.Answer(c.ID, "alice")
		time.Sleep(time.Minute)
		synctest.Wait()
		got, _ := m.Get(c.ID)
		if got.State != Ended || got.Reason != ReasonMaxDuration || got.Finished.Sub(got.Answered) != time.Minute {
			t.Fatalf("%+v", got)
		}
		if got, want := rec.states(), []string{">ringing", "ringing>answered", "answered>ended"}; !slices.Equal(got, want) {
			t.Fatalf("transitions %v, want %v", got, want)
		}
	})
}

func TestDeclineAndBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, rec := newManager("alice", "bob")
		defer m.Close()
		c, _ := m.Ring("doorbell", "")
		d, err := m.Decline(c.ID, "alice", false)
		if err != nil || d.State != Ringing {
			t.Fatalf("one of two declined: %+v, %v", d, err)
		}
		d, _ = m.Decline(c.ID, "alice", false) // twice counts once
		if d.State != Ringing {
			t.Fatalf("the same phone twice: %+v", d)
		}
		d, err = m.Decline(c.ID, "bob", false)
		if err != nil || d.State != Declined || d.Reason != ReasonDeclined || !slices.Equal(d.Declined, []string{"alice", "bob"}) {
			t.Fatalf("both declined: %+v, %v", d, err)
		}
		if l := rec.last(); l.To != Declined || l.User != "bob" {
			t.Fatalf("%+v", l)
		}

		c, _ = m.Ring("doorbell", "")
		b, err := m.Decline(c.ID, "bob", true)
		if err != nil || b.State != Busy || b.Reason != ReasonBusy {
			t.Fatalf("busy: %+v, %v", b, err)
		}
		if _, err := m.Decline(c.ID, "alice", false); !errors.Is(err, ErrOver) {
			t.Fatalf("decline of a finished call: %v", err)
		}
	})
}

func TestPressDuringCallIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, rec := newManager("alice")
		defer m.Close()
		c, _ := m.Ring("doorbell", "")
		if _, err := m.Ring("doorbell", ""); !errors.Is(err, ErrInCall) {
			t.Fatalf("ring while ringing: %v", err)
		}
		m.Answer(c.ID, "alice")
		if _, err := m.Ring("api", "alice"); !errors.Is(err, ErrInCall) {
			t.Fatalf("ring while answered: %v", err)
		}
		if n := len(rec.states()); n != 2 {
			t.Fatalf("%d transitions, want 2 (the ignored presses tell nothing)", n)
		}
	})
}

func TestBadInput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, _ := newManager("alice")
		defer m.Close()
		for _, f := range []func() error{
			func() error { _, err := m.Answer("nope", "alice"); return err },
			func() error { _, err := m.Decline("nope", "alice", true); return err },
			func() error { _, err := m.Hangup("nope", "alice", ""); return err },
			func() error { _, err := m.Get("nope"); return err },
		} {
			if err := f(); !errors.Is(err, ErrNotFound) {
				t.Errorf("unknown id: %v, want ErrNotFound", err)
			}
		}
		c, _ := m.Ring("doorbell", "")
		m.Answer(c.ID, "alice")
		m.Hangup(c.ID, "alice", "")
		for name, f := range map[string]func() error{
			"answer":  func() error { _, err := m.Answer(c.ID, "alice"); return err },
			"decline": func() error { _, err := m.Decline(c.ID, "alice", false); return err },
			"hangup":  func() error { _, err := m.Hangup(c.ID, "alice", ""); return err },
		} {
			if err := f(); !errors.Is(err, ErrOver) {
				t.Errorf("%s of an ended call: %v, want ErrOver", name, err)
			}
		}
	})
}

// answerAll answers the ringing call from n goroutines at once and
// returns who won and how many were told it was answered elsewhere.
func answerAll(t *testing.T, m *Manager, id string, n int) (winners []string, elsewhere int) {
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			user := string(rune('a'+i%26)) + string(rune('0'+i/26))
			_, err := m.Answer(id, user)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, user)
			case errors.Is(err, ErrAnsweredElsewhere):
				elsewhere++
			default:
				t.Errorf("answer: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	return winners, elsewhere
}

func TestConcurrentAnswersOneWins(t *testing.T) {
	for _, n := range []int{10, 100} {
		synctest.Test(t, func(t *testing.T) {
			m, rec := newManager()
			defer m.Close()
			c, _ := m.Ring("doorbell", "")
			winners, elsewhere := answerAll(t, m, c.ID, n)
			if len(winners) != 1 || elsewhere != n-1 {
				t.Fatalf("%d answers: winners %v, %d answered elsewhere", n, winners, elsewhere)
			}
			got, _ := m.Get(c.ID)
			if got.AnsweredBy != winners[0] {
				t.Fatalf("answered by %q, the winner was %q", got.AnsweredBy, winners[0])
			}
			if s := rec.states(); len(s) != 2 {
				t.Fatalf("transitions %v", s)
			}
		})
	}
}

// Transitions are told in order even when requests race: the ringing
// one first, one answered, then one final.
func TestTransitionsInOrderUnderRace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, rec := newManager("a", "b")
		defer m.Close()
		c, _ := m.Ring("doorbell", "")
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() { m.Answer(c.ID, "a") })
			wg.Go(func() { m.Decline(c.ID, "b", true) })
			wg.Go(func() { m.Hangup(c.ID, "a", "") })
		}
		wg.Wait()
		s := rec.states()
		if s[0] != ">ringing" {
			t.Fatalf("first %v", s)
		}
		final := 0
		for i, x := range s[1:] {
			if x == "ringing>answered" && i != 0 {
				t.Fatalf("answered after another transition: %v", s)
			}
			if x != "ringing>answered" {
				final++
			}
		}
		if final != 1 {
			t.Fatalf("%d final transitions: %v", final, s)
		}
	})
}

func TestEndUser(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, rec := newManager("alice", "bob")
		defer m.Close()
		c, _ := m.Ring("doorbell", "")
		if n := m.EndUser("bob", "access ended"); n != 0 {
			t.Fatalf("ringing call ended for bob: %d", n)
		}
		// Bob is no longer a phone of the call: alice alone declines it.
		d, _ := m.Decline(c.ID, "alice", false)
		if d.State != Declined {
			t.Fatalf("after bob was revoked, alice's decline: %+v", d)
		}
		// Alice declines, then Bob, who had not, is revoked: nobody is
		// left to answer.
		m2, rec2 := newManager("alice", "bob")
		defer m2.Close()
		c2, _ := m2.Ring("doorbell", "")
		m2.Decline(c2.ID, "alice", false)
		m2.EndUser("bob", "access ended")
		if got, _ := m2.Get(c2.ID); got.State != Declined {
			t.Fatalf("every phone left declined: %+v", got)
		}
		if l := rec2.last(); l.To != Declined || l.User != "" {
			t.Fatalf("%+v", l)
		}

		c, _ = m.Ring("doorbell", "")
		m.Answer(c.ID, "alice")
		if n := m.EndUser("bob", "access ended"); n != 0 {
			t.Fatal("ended alice's call for bob")
		}
		if n := m.EndUser("alice", "access ended"); n != 1 {
			t.Fatalf("EndUser: %d", n)
		}
		if l := rec.last(); l.To != Ended || l.Reason != "access ended" {
			t.Fatalf("%+v", l)
		}
	})
}

func TestCloseEndsTheCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, rec := newManager()
		m.Ring("doorbell", "")
		m.Close()
		m.Close()
		if l := rec.last(); l.To != Missed || l.Reason != ReasonStopping {
			t.Fatalf("%+v", l)
		}
		if _, err := m.Ring("doorbell", ""); !errors.Is(err, ErrClosed) {
			t.Fatalf("ring after close: %v", err)
		}
	})
}

func TestHistoryBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := New(Options{History: 3})
		defer m.Close()
		var ids []string
		for range 5 {
			c, _ := m.Ring("api", "o")
			m.Hangup(c.ID, "", ReasonFailed)
			ids = append(ids, c.ID)
		}
		h := m.History()
		if len(h) != 3 || h[0].ID != ids[4] || h[2].ID != ids[2] {
			t.Fatalf("history %+v", h)
		}
		if _, err := m.Answer(ids[0], "x"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a forgotten call: %v", err)
		}
	})
}
