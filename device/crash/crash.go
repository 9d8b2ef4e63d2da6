package crash

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/camd-project/camd/internal/durable"
	"github.com/camd-project/camd/storage/eventlog"
)

// EventRecorded is the event of a crash report kept for the owner.
const EventRecorded = "crash.recorded"

// Modes of Options.Mode.
const (
	Never = "never"
	Ask   = "ask"
	Send  = "send"
)

// Errors.
var (
	ErrNotFound = errors.New("crash: no such report")
	ErrNoURL    = errors.New("crash: no collector configured (crash_reports_url)")
	ErrUpload   = errors.New("crash: upload failed")
)

// File names in Options.Dir.
const (
	// TraceFile is where the runtime writes a fatal error's trace.
	TraceFile = "crash.trace"
	// ReportsDir holds the reports, one JSON file each.
	ReportsDir = "crashes"
)

// maxReports is how many reports are kept; the oldest go first.
const maxReports = 10

// LogLines is how many of the log's last lines a report carries.
const LogLines = 200

// maxTrace bounds the trace a report keeps (a crash with many
// goroutines can print megabytes).
const maxTrace = 1 << 20

// eventAdder is where the crash.recorded event goes (*eventlog.Log
// today).
type eventAdder interface {
	Add(e eventlog.Event) (uint64, error)
}

// Options configure Reports. Dir and Version are required.
type Options struct {
	// Dir is the data directory.
	Dir string
	// Mode is Never, Ask (default) or Send.
	Mode string
	// URL is the https collector; Client sends to it (default
	// http.DefaultClient).
	URL    string
	Client *http.Client
	// Version is the version running now.
	Version string
	// Events gets the crash.recorded event; nil for none.
	Events eventAdder
	// LogBefore returns the log's last n lines of the runs before this
	// one (the run that crashed), as JSON lines.
	LogBefore func(n int) []json.RawMessage
	Logger    *slog.Logger
}

// Report is one crash.
type Report struct {
	ID string `json:"id"`
	// Time is when the crashed run wrote its trace.
	Time    time.Time `json:"time"`
	Version string    `json:"version"`
	// Started is when the crashed run started; Uptime how long it ran.
	Started time.Time     `json:"started"`
	Uptime  time.Duration `json:"uptime_ns"`
	Trace   string        `json:"trace"`
	// Log is the log's last lines before the crash, oldest first.
	Log []json.RawMessage `json:"log"`
	// Sent is when the report was uploaded; zero until then.
	Sent time.Time `json:"sent,omitzero"`
}

// Summary is a report without its trace and log.
type Summary struct {
	ID      string        `json:"id"`
	Time    time.Time     `json:"time"`
	Version string        `json:"version"`
	Uptime  time.Duration `json:"uptime_ns"`
	Sent    time.Time     `json:"sent,omitzero"`
}

// Reports keeps the crash reports in the data directory.
type Reports struct {
	opts Options
	mu   sync.Mutex // one writer of the reports' files at a time
	// wake asks Run to upload (Send mode).
	wake chan struct{}
	// mode is Options.Mode, then what SetMode set (the owner's
	// crash_reports setting).
	mode atomic.Value
}

// Open collects the previous run's trace, if it crashed, into a report
// (Ask, Send) or a log line (Never), and returns the reports.
func Open(opts Options) (*Reports, error) {
	if opts.Mode == "" {
		opts.Mode = Ask
	}
	if opts.Client == nil {
		opts.Client = http.DefaultClient
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Reports{opts: opts, wake: make(chan struct{}, 1)}
	r.mode.Store(opts.Mode)
	if err := r.collect(); err != nil {
		return nil, err
	}
	if opts.Mode == Never {
		// Reports kept while the mode was ask: the owner chose never.
		os.RemoveAll(r.dir())
	}
	return r, nil
}

func (r *Reports) dir() string       { return filepath.Join(r.opts.Dir, ReportsDir) }
func (r *Reports) tracePath() string { return filepath.Join(r.opts.Dir, TraceFile) }

// header is the trace file's first line.
type header struct {
	Version string    `json:"version"`
	Started time.Time `json:"started"`
	PID     int       `json:"pid"`
}

// collect turns the trace file into a report when it holds more than
// its header.
func (r *Reports) collect() error {
	path := r.tracePath()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("crash: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("crash: %w", err)
	}
	br := bufio.NewReader(io.LimitReader(f, maxTrace))
	first, _ := br.ReadBytes('\n')
	var h header
	json.Unmarshal(first, &h)
	trace, _ := io.ReadAll(br)
	if len(bytes.TrimSpace(trace)) == 0 {
		os.Remove(path) // a run that ended without crashing
		return nil
	}
	at := fi.ModTime()
	log := r.opts.Logger
	if r.Mode() == Never {
		log.Warn("camd: the previous run crashed; crash_reports is never, so no report is kept",
			"crashed", at, "version", h.Version, "started", h.Started)
		os.Remove(path)
		return nil
	}
	rep := Report{
		ID: newID(at), Time: at, Version: h.Version, Started: h.Started,
		Trace: string(trace),
	}
	if !h.Started.IsZero() {
		// The file's time has the file system's precision (a tick of
		// the kernel's coarse clock): a crash within it of the start
		// would come out negative.
		rep.Uptime = max(at.Sub(h.Started), 0)
	}
	if r.opts.LogBefore != nil {
		rep.Log = r.opts.LogBefore(LogLines)
	}
	if err := r.write(rep); err != nil {
		return err
	}
	os.Remove(path)
	durable.SyncDir(r.opts.Dir)
	r.prune()
	log.Warn("camd: the previous run crashed; a crash report is kept", "crash", rep.ID, "version", rep.Version,
		"uptime", rep.Uptime.Round(time.Second), "crash_reports", r.Mode())
	if r.opts.Events != nil {
		if _, err := r.opts.Events.Add(eventlog.Event{
			Time: at, Kind: EventRecorded, Message: "camd crashed and restarted",
			Data: map[string]string{"crash_id": rep.ID, "version": rep.Version, "mode": r.Mode()},
		}); err != nil {
			log.Warn("camd: crash event not recorded", "err", err)
		}
	}
	if r.Mode() == Send {
		r.kick()
	}
	return nil
}

func newID(t time.Time) string {
	b := make([]byte, 4)
	rand.Read(b)
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

func (r *Reports) path(id string) (string, error) {
	if id == "" || strings.ContainsAny(id, `/\.`) || len(id) > 64 {
		return "", fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return filepath.Join(r.dir(), id+".json"), nil
}

func (r *Reports) write(rep Report) error {
	if err := os.MkdirAll(r.dir(), 0o700); err != nil {
		return fmt.Errorf("crash: %w", err)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("crash: %w", err)
	}
	p, err := r.path(rep.ID)
	if err != nil {
		return err
	}
	if err := durable.WriteFile(p, b, 0o600); err != nil {
		return fmt.Errorf("crash: %w", err)
	}
	return nil
}

// prune removes the oldest reports beyond maxReports.
func (r *Reports) prune() {
	ids, _ := r.ids()
	for len(ids) > maxReports {
		os.Remove(filepath.Join(r.dir(), ids[0]+".json"))
		ids = ids[1:]
	}
}

// ids lists the reports, oldest first (their IDs begin with the time).
func (r *Reports) ids() ([]string, error) {
	des, err := os.ReadDir(r.dir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("crash: %w", err)
	}
	var ids []string
	for _, de := range des {
		if id, ok := strings.CutSuffix(de.Name(), ".json"); ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// List returns the reports, newest first.
func (r *Reports) List() ([]Summary, error) {
	ids, err := r.ids()
	if err != nil {
		return nil, err
	}
	out := []Summary{}
	for _, id := range slices.Backward(ids) {
		rep, err := r.Get(id)
		if err != nil {
			continue
		}
		out = append(out, Summary{ID: rep.ID, Time: rep.Time, Version: rep.Version, Uptime: rep.Uptime, Sent: rep.Sent})
	}
	return out, nil
}

// Get returns one report.
func (r *Reports) Get(id string) (Report, error) {
	p, err := r.path(id)
	if err != nil {
		return Report{}, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return Report{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return Report{}, fmt.Errorf("crash: %w", err)
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return Report{}, fmt.Errorf("crash: report %s: %w", id, err)
	}
	return rep, nil
}

// Delete removes a report.
func (r *Reports) Delete(id string) error {
	p, err := r.path(id)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := os.Remove(p); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	} else if err != nil {
		return fmt.Errorf("crash: %w", err)
	}
	durable.SyncDir(r.dir())
	return nil
}

// Send uploads a report to the collector (the owner's choice, or Send
// mode) and marks it sent. A report already sent is sent again only
// when the owner asks again.
func (r *Reports) Send(ctx context.Context, id string) (Report, error) {
	if r.opts.URL == "" {
		return Report{}, ErrNoURL
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rep, err := r.Get(id)
	if err != nil {
		return Report{}, err
	}
	body, err := json.Marshal(rep)
	if err != nil {
		return Report{}, fmt.Errorf("crash: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.opts.URL, bytes.NewReader(body))
	if err != nil {
		return Report{}, fmt.Errorf("crash: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.opts.Client.Do(req)
	if err != nil {
		return Report{}, fmt.Errorf("%w: %v", ErrUpload, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return Report{}, fmt.Errorf("%w: the collector answered %s", ErrUpload, resp.Status)
	}
	rep.Sent = time.Now()
	if err := r.write(rep); err != nil {
		return Report{}, err
	}
	r.opts.Logger.Info("camd: crash report sent", "crash", id)
	return rep, nil
}

func (r *Reports) kick() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Mode is what happens to a crash's report now: Never, Ask or Send.
func (r *Reports) Mode() string { return r.mode.Load().(string) }

// SetMode changes the mode (the owner changed crash_reports): Send
// uploads the reports not sent yet at once; Never deletes the reports
// kept. It reports whether mode is one of the three.
func (r *Reports) SetMode(mode string) bool {
	switch mode {
	case Never:
		r.mode.Store(mode)
		r.mu.Lock()
		os.RemoveAll(r.dir())
		r.mu.Unlock()
	case Ask:
		r.mode.Store(mode)
	case Send:
		r.mode.Store(mode)
		r.kick()
	default:
		return false
	}
	r.opts.Logger.Info("camd: crash reports", "crash_reports", mode)
	return true
}

// Run uploads the reports not sent yet while the mode is Send, at once
// when it becomes Send and then every retry (default 10 minutes), until
// ctx ends.
func (r *Reports) Run(ctx context.Context, retry time.Duration) {
	if r.Mode() == Send {
		r.kick()
	}
	if retry <= 0 {
		retry = 10 * time.Minute
	}
	t := time.NewTimer(retry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-t.C:
			t.Reset(retry)
		}
		if r.Mode() != Send {
			continue
		}
		sums, _ := r.List()
		for _, s := range sums {
			if !s.Sent.IsZero() {
				continue
			}
			if _, err := r.Send(ctx, s.ID); err != nil {
				r.opts.Logger.Warn("camd: crash report not sent; trying again later", "crash", s.ID, "err", err)
			}
		}
	}
}

// Arm makes the runtime write a fatal error's trace to the trace file
// (and to standard error, as always), for the next start to find. The
// crash output is the process's: the last Arm wins.
func (r *Reports) Arm(started time.Time) error {
	f, err := os.OpenFile(r.tracePath(), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("crash: %w", err)
	}
	defer f.Close() // SetCrashOutput keeps a duplicate
	b, _ := json.Marshal(header{Version: r.opts.Version, Started: started, PID: os.Getpid()})
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("crash: %w", err)
	}
	if err := debug.SetCrashOutput(f, debug.CrashOptions{}); err != nil {
		return fmt.Errorf("crash: %w", err)
	}
	return nil
}

// Disarm stops writing traces to the file (a clean stop, or before a
// factory reset erases it).
func (r *Reports) Disarm() {
	debug.SetCrashOutput(nil, debug.CrashOptions{})
}
