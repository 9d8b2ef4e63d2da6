package logring

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/camd-project/camd/internal/durable"
)

// DefaultSize is the ring's size when Options.Size is zero.
const DefaultSize = 2 << 20

// MinSize is the smallest ring Open accepts.
const MinSize = 64 << 10

// ErrClosed: the ring was closed.
var ErrClosed = errors.New("logring: closed")

// maxValue is the longest string value kept in a line: longer ones are
// cut (a runaway attribute must not push the whole history out).
const maxValue = 2048

// segExt names the segment files: a decimal sequence number, newest
// highest.
const segExt = ".jsonl"

// Options tune a Ring. The zero value means defaults.
type Options struct {
	// Size bounds the files of the ring together (default DefaultSize).
	Size int64
	// Level is the least level the ring keeps (default info).
	Level slog.Leveler
}

// Ring is the log ring in one directory. Its Handler writes to it; Read
// and Wait read it back. It is safe for concurrent use.
type Ring struct {
	dir  string
	opts Options
	seg  int64 // the most bytes a segment holds

	mu      sync.Mutex
	f       *os.File // the newest segment
	num     int      // its number
	size    int64    // its length
	seq     uint64   // the last line's sequence number
	closed  bool
	changed chan struct{} // closed and replaced at every line
	dirty   chan struct{} // a line waits for fsync (capacity 1)
	done    chan struct{}
	wg      sync.WaitGroup
}

// Open opens (or makes) the ring in dir.
func Open(dir string, opts Options) (*Ring, error) {
	if opts.Size == 0 {
		opts.Size = DefaultSize
	}
	if opts.Size < MinSize {
		return nil, fmt.Errorf("logring: size %d is less than %d", opts.Size, MinSize)
	}
	if opts.Level == nil {
		opts.Level = slog.LevelInfo
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("logring: %w", err)
	}
	r := &Ring{dir: dir, opts: opts, seg: opts.Size / 2, changed: make(chan struct{}), dirty: make(chan struct{}, 1), done: make(chan struct{})}
	segs, err := r.segments()
	if err != nil {
		return nil, err
	}
	// More than two segments: a power cut between making a segment and
	// removing the oldest.
	for len(segs) > 2 {
		os.Remove(r.path(segs[0]))
		segs = segs[1:]
	}
	if len(segs) == 0 {
		segs = []int{1}
	}
	r.num = segs[len(segs)-1]
	if r.f, r.size, err = openSegment(r.path(r.num)); err != nil {
		return nil, err
	}
	for _, n := range slices.Backward(segs) {
		if seq, ok := lastSeq(r.path(n)); ok {
			r.seq = seq
			break
		}
	}
	durable.SyncDir(dir)
	r.wg.Go(r.syncer)
	return r, nil
}

func (r *Ring) path(n int) string { return filepath.Join(r.dir, fmt.Sprintf("%08d%s", n, segExt)) }

// segments lists the segment numbers in dir, oldest first.
func (r *Ring) segments() ([]int, error) {
	des, err := os.ReadDir(r.dir)
	if err != nil {
		return nil, fmt.Errorf("logring: %w", err)
	}
	var segs []int
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), segExt)
		if n, err := strconv.Atoi(name); ok && err == nil && n > 0 {
			segs = append(segs, n)
		}
	}
	slices.Sort(segs)
	return segs, nil
}

// openSegment opens a segment for appending, cut after its last whole
// line: what a crash or a power cut left of a line (or the zeros a file
// system may leave) goes.
func openSegment(path string) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("logring: %w", err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("logring: %w", err)
	}
	end := int64(bytes.LastIndexByte(b, '\n') + 1)
	if end != int64(len(b)) {
		if err := f.Truncate(end); err != nil {
			f.Close()
			return nil, 0, fmt.Errorf("logring: %w", err)
		}
	}
	if _, err := f.Seek(end, io.SeekStart); err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("logring: %w", err)
	}
	return f, end, nil
}

// lastSeq is the sequence number of a segment's last readable line.
func lastSeq(path string) (uint64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	lines := bytes.Split(b, []byte{'\n'})
	for _, l := range slices.Backward(lines) {
		if e, ok := parse(l); ok {
			return e.Seq, true
		}
	}
	return 0, false
}

// Handler is a slog handler that writes JSON lines to the ring, at the
// ring's level, with string values cut at 2 KiB.
func (r *Ring) Handler() slog.Handler {
	return slog.NewJSONHandler(ringWriter{r}, &slog.HandlerOptions{
		Level: r.opts.Level,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindString && len(a.Value.String()) > maxValue {
				a.Value = slog.StringValue(a.Value.String()[:maxValue] + "…")
			}
			return a
		},
	})
}

// ringWriter takes the JSON handler's lines: one Write per record.
type ringWriter struct{ r *Ring }

func (w ringWriter) Write(p []byte) (int, error) {
	if err := w.r.append(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// append writes one JSON line with the next sequence number as its
// first member.
func (r *Ring) append(p []byte) error {
	if len(p) < 2 || p[0] != '{' || p[len(p)-1] != '\n' {
		return fmt.Errorf("logring: not a JSON line")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	seq := r.seq + 1
	line := make([]byte, 0, len(p)+24)
	line = append(line, `{"seq":`...)
	line = strconv.AppendUint(line, seq, 10)
	if p[1] != '}' {
		line = append(line, ',')
	}
	line = append(line, p[1:]...)
	if r.size > 0 && r.size+int64(len(line)) > r.seg {
		if err := r.rotate(); err != nil {
			return err
		}
	}
	n, err := r.f.Write(line)
	r.size += int64(n)
	if err != nil {
		return fmt.Errorf("logring: %w", err)
	}
	r.seq = seq
	close(r.changed)
	r.changed = make(chan struct{})
	select {
	case r.dirty <- struct{}{}:
	default:
	}
	return nil
}

// rotate starts a new segment and removes the oldest. Called with mu held.
func (r *Ring) rotate() error {
	r.f.Sync()
	f, err := os.OpenFile(r.path(r.num+1), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("logring: %w", err)
	}
	r.f.Close()
	os.Remove(r.path(r.num - 1))
	r.f, r.size = f, 0
	r.num++
	durable.SyncDir(r.dir)
	return nil
}

// syncer fsyncs the newest segment after lines were written: lines
// written during one fsync share the next.
func (r *Ring) syncer() {
	for {
		select {
		case <-r.done:
			return
		case <-r.dirty:
		}
		r.mu.Lock()
		f := r.f
		r.mu.Unlock()
		f.Sync() // a file rotate closed was synced there
	}
}

// Sync makes every line written so far durable (the syncer does so on
// its own soon after each write).
func (r *Ring) Sync() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	return r.f.Sync()
}

// Close syncs and closes the ring; lines logged afterwards are dropped.
// It is safe to call twice.
func (r *Ring) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.done)
	r.mu.Unlock()
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.f.Sync()
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	close(r.changed)
	return err
}

// Entry is one line of the ring.
type Entry struct {
	Seq   uint64
	Time  time.Time
	Level slog.Level
	// Line is the whole JSON object: seq, time, level, msg and the
	// record's attributes.
	Line json.RawMessage
}

func parse(l []byte) (Entry, bool) {
	var h struct {
		Seq   uint64    `json:"seq"`
		Time  time.Time `json:"time"`
		Level string    `json:"level"`
	}
	if len(l) == 0 || l[0] != '{' || json.Unmarshal(l, &h) != nil || h.Seq == 0 {
		return Entry{}, false
	}
	e := Entry{Seq: h.Seq, Time: h.Time, Line: json.RawMessage(l)}
	if e.Level.UnmarshalText([]byte(h.Level)) != nil {
		e.Level = slog.LevelInfo
	}
	return e, true
}

// Query selects lines. The zero value selects the newest 500 of every
// level.
type Query struct {
	// After, when not zero, selects the lines that followed the line of
	// this sequence number, oldest first (a reader following the log);
	// otherwise the newest lines are selected.
	After uint64
	// Level is the least level selected.
	Level slog.Level
	// Since and Until, when set, bound the lines' times: [Since, Until).
	Since, Until time.Time
	// Through, when not zero, is the last line selected (the lines of
	// the runs before the one that started after it).
	Through uint64
	// Limit is the most lines returned (default 500).
	Limit int
}

// Read returns the lines q selects, oldest first, and the After of a
// reader that wants what comes next: the ring's last line's sequence
// number, or the last line returned when Limit cut the answer short.
func (r *Ring) Read(q Query) ([]Entry, uint64, error) {
	if q.Limit <= 0 {
		q.Limit = 500
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, 0, ErrClosed
	}
	last, num, size := r.seq, r.num, r.size
	r.mu.Unlock()
	var out []Entry
	for _, n := range []int{num - 1, num} {
		f, err := os.Open(r.path(n))
		if errors.Is(err, os.ErrNotExist) {
			continue // the older one: never made, or just rotated away
		}
		if err != nil {
			return nil, 0, fmt.Errorf("logring: %w", err)
		}
		var src io.Reader = f
		if n == num {
			src = io.LimitReader(f, size)
		}
		sc := bufio.NewScanner(src)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			e, ok := parse(sc.Bytes())
			if !ok || e.Seq > last || e.Seq <= q.After || (q.Through > 0 && e.Seq > q.Through) || e.Level < q.Level ||
				(!q.Since.IsZero() && e.Time.Before(q.Since)) || (!q.Until.IsZero() && !e.Time.Before(q.Until)) {
				continue
			}
			e.Line = slices.Clone(e.Line)
			if q.After > 0 && len(out) == q.Limit {
				break
			}
			out = append(out, e)
			if q.After == 0 && len(out) > q.Limit {
				out = out[1:]
			}
		}
		f.Close()
	}
	// A rotation while reading can repeat or skip the older segment's
	// lines: keep them in order, once.
	slices.SortFunc(out, func(a, b Entry) int { return compareSeq(a.Seq, b.Seq) })
	out = slices.CompactFunc(out, func(a, b Entry) bool { return a.Seq == b.Seq })
	if q.After > 0 && len(out) == q.Limit {
		last = out[len(out)-1].Seq // more may follow
	}
	return slices.Clip(out), last, nil
}

func compareSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Wait returns once the ring holds a line after the one numbered after,
// the ring is closed, or ctx ends.
func (r *Ring) Wait(ctx context.Context, after uint64) error {
	for {
		r.mu.Lock()
		seq, ch, closed := r.seq, r.changed, r.closed
		r.mu.Unlock()
		if closed {
			return ErrClosed
		}
		if seq > after {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
