package board

import (
	"sync"
	"time"
)

// PlayoutWindow is how much of what a speaker played a PlayoutLine
// keeps: as much as a call's echo canceller looks back (media/talk).
const PlayoutWindow = 2 * time.Second

// PlayoutSpeaker is a speaker that knows what it played when, on its
// own clock: a call's echo canceller takes its far end from it
// (talk.CancellerOptions.Playout) rather than placing what it hands the
// speaker on a clock of its own.
type PlayoutSpeaker interface {
	Speaker
	// Playout copies into dst what the speaker played from at on
	// (SpeakerRate samples), silence where it played nothing; it
	// returns false when it does not know (nothing of
	// [at, at+len(dst)) is within what it keeps).
	Playout(dst []int16, at time.Time) bool
}

// PlayoutLine is what a speaker played, on the clock: the last
// PlayoutWindow of it, silence where the speaker played nothing. A
// speaker driver adds each piece as it plays it (Played, Queued), and
// answers Playout from it. Its zero value is an empty line; it is safe
// for concurrent use.
type PlayoutLine struct {
	// Slack is how far from the end of the line a piece Played may be
	// stamped and still be taken as following it (a device plays its
	// pieces back to back; their stamps jitter with the thread that
	// fills it). A piece further off starts the line there: after a
	// gap of silence, or over what the line said played there.
	Slack time.Duration

	mu     sync.Mutex
	ring   []int16   // PlayoutWindow of samples
	w, n   int       // where the next sample goes, samples kept
	anchor time.Time // when the line's count started
	count  int64     // samples from anchor to the end of the line
}

// Played adds pcm, played from at on. A piece stamped within Slack of
// the end of the line follows it.
func (l *PlayoutLine) Played(pcm []int16, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.place(at, false)
	l.append(pcm)
}

// Queued adds pcm as a speaker with a queue plays it, given at now: after
// what it still had to play, or from now when it had played it all.
func (l *PlayoutLine) Queued(pcm []int16, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.place(now, true)
	l.append(pcm)
}

// Reset forgets what was played.
func (l *PlayoutLine) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n, l.count = 0, 0
}

// Playout copies into dst what was played from at on, silence where
// nothing was (or it is no longer kept). It returns false, dst
// silent, when no sample of [at, at+len(dst)) is on the line (nothing
// played yet, at later than the line's end, or all of it before what
// the line keeps).
func (l *PlayoutLine) Playout(dst []int16, at time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(dst)
	if l.n == 0 {
		return false
	}
	back := l.end().Sub(at) // how long before the end at is
	if back <= 0 || back-samplesDur(int64(len(dst))) >= samplesDur(int64(l.n)) {
		return false
	}
	first := int64(l.n) - durSamples(back) // at's place among the n kept
	for i := range dst {
		if j := first + int64(i); j >= 0 && j < int64(l.n) {
			dst[i] = l.ring[(l.w-l.n+int(j)+len(l.ring))%len(l.ring)]
		}
	}
	return true
}

// end is when the sample after the line's last plays.
func (l *PlayoutLine) end() time.Time { return l.anchor.Add(samplesDur(l.count)) }

// place makes the line end at at, where the next piece plays: a gap is
// silence; a piece earlier than the end (Played only, past Slack)
// replaces what the line said played from there. A line that is empty,
// or a window or more away from at, starts again at at. A queue plays
// what it is given after what it has, however early.
func (l *PlayoutLine) place(at time.Time, queue bool) {
	if l.ring == nil {
		l.ring = make([]int16, durSamples(PlayoutWindow))
	}
	gap := at.Sub(l.end())
	switch {
	case l.n == 0 || gap >= PlayoutWindow || gap <= -PlayoutWindow:
		l.n, l.anchor, l.count = 0, at, 0
	case queue && gap > 0, !queue && gap > l.Slack:
		l.silence(durSamples(gap))
	case !queue && gap < -l.Slack:
		back := durSamples(-gap)
		if back >= int64(l.n) {
			l.n, l.anchor, l.count = 0, at, 0
			return
		}
		l.n -= int(back)
		l.w = (l.w - int(back) + len(l.ring)) % len(l.ring)
		l.count -= back
	}
}

func (l *PlayoutLine) append(pcm []int16) {
	l.count += int64(len(pcm))
	if len(pcm) > len(l.ring) {
		pcm = pcm[len(pcm)-len(l.ring):]
	}
	for len(pcm) > 0 {
		k := copy(l.ring[l.w:], pcm)
		pcm = pcm[k:]
		l.w = (l.w + k) % len(l.ring)
		l.n = min(l.n+k, len(l.ring))
	}
}

func (l *PlayoutLine) silence(n int64) {
	l.count += n
	n = min(n, int64(len(l.ring)))
	for n > 0 {
		k := min(int(n), len(l.ring)-l.w)
		clear(l.ring[l.w : l.w+k])
		n -= int64(k)
		l.w = (l.w + k) % len(l.ring)
		l.n = min(l.n+k, len(l.ring))
	}
}

// samplesDur is how long n samples play, exactly to the nanosecond
// however many (a line that plays for days counts them all).
func samplesDur(n int64) time.Duration {
	return time.Duration(n/SpeakerRate)*time.Second + time.Duration(n%SpeakerRate)*time.Second/SpeakerRate
}

// durSamples is how many samples play in d, to the nearest.
func durSamples(d time.Duration) int64 {
	return (int64(d)*SpeakerRate + int64(time.Second)/2) / int64(time.Second)
}
