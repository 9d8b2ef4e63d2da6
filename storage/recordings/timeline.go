package recordings

import (
	"fmt"
	"slices"
	"time"
)

// Timeline is what was recorded of a stream in a time range.
type Timeline struct {
	Stream uint32    `json:"stream"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	// Spans are the stretches recorded, clipped to the range, in order.
	Spans []Span `json:"spans"`
	// Gaps are the stretches of the range up to now that were not.
	Gaps []Span `json:"gaps"`
	// Recorded is the total length of Spans.
	Recorded time.Duration `json:"recorded_ns"`
}

// Times outside these bounds are clamped: they cannot be recording times,
// and Unix ns cannot hold them.
var (
	minTime = time.Unix(0, 0)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// CheckRange clamps a range to what Unix ns can hold and refuses an empty
// or reversed one.
func CheckRange(from, to time.Time) (time.Time, time.Time, error) {
	if !from.Before(to) {
		if from.Equal(to) {
			return from, to, fmt.Errorf("%w: empty (from = to = %s)", ErrRange, from.Format(time.RFC3339))
		}
		return from, to, fmt.Errorf("%w: reversed (from %s is after to %s)", ErrRange, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if from.Before(minTime) {
		from = minTime
	}
	if to.After(maxTime) {
		to = maxTime
	}
	if !from.Before(to) {
		return from, to, fmt.Errorf("%w: outside 1970..2200", ErrRange)
	}
	return from, to, nil
}

// overlapping calls fn, under s.mu, for each span of stream overlapping
// [from, to) in the index, with its volume's record; quarantined volumes
// are left out.
func (s *Store) overlapping(stream uint32, from, to time.Time, fn func(r *vol, sp Span)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.vols {
		if r.State == stateQuarantined {
			continue
		}
		for _, sp := range r.Spans {
			if sp.Stream == stream && sp.End.After(from) && sp.Start.Before(to) {
				fn(r, sp)
			}
		}
	}
}

// spans returns the stream's spans overlapping [from, to), merged and in
// order, from the index in memory.
func (s *Store) spans(stream uint32, from, to time.Time) []Span {
	var out []Span
	s.overlapping(stream, from, to, func(_ *vol, sp Span) { out = append(out, sp) })
	slices.SortFunc(out, func(a, b Span) int { return a.Start.Compare(b.Start) })
	merged := out[:0]
	for _, sp := range out {
		if n := len(merged); n > 0 && sp.Start.Sub(merged[n-1].End) <= mergeGap {
			if sp.End.After(merged[n-1].End) {
				merged[n-1].End = sp.End
			}
			continue
		}
		merged = append(merged, sp)
	}
	return merged
}

// Timeline lists the spans of stream recorded in [from, to) and the gaps
// between them. It reads the index in memory, never the volumes.
func (s *Store) Timeline(stream uint32, from, to time.Time) (Timeline, error) {
	from, to, err := CheckRange(from, to)
	if err != nil {
		return Timeline{}, err
	}
	tl := Timeline{Stream: stream, From: from, To: to, Spans: []Span{}, Gaps: []Span{}}
	end := minT(to, time.Now())
	cursor := from
	for _, sp := range s.spans(stream, from, to) {
		sp.Start, sp.End = maxT(sp.Start, from), minT(sp.End, to)
		if sp.Start.Sub(cursor) > mergeGap && cursor.Before(end) {
			tl.Gaps = append(tl.Gaps, Span{Stream: stream, Start: cursor, End: minT(sp.Start, end)})
		}
		tl.Spans = append(tl.Spans, sp)
		tl.Recorded += sp.End.Sub(sp.Start)
		cursor = sp.End
	}
	if end.Sub(cursor) > mergeGap {
		tl.Gaps = append(tl.Gaps, Span{Stream: stream, Start: cursor, End: end})
	}
	return tl, nil
}

func maxT(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minT(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
