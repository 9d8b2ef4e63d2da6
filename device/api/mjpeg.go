package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// MJPEG defaults: the frame rate of GET /api/v1/mjpeg, shared by every
// client, and how many clients may watch it at once.
const (
	DefaultMJPEGRate    = 5
	DefaultMJPEGClients = 4
)

const mjpegBoundary = "camdframe"

var (
	errMJPEGFull   = errors.New("mjpeg: too many MJPEG clients; use WHEP or RTSP for more viewers")
	errMJPEGClosed = errors.New("mjpeg: shutting down")
)

// mjpegFeed takes one JPEG per tick while anyone watches and hands the
// same bytes to every client: n clients cost one encoder, not n. It runs
// only while it has clients.
type mjpegFeed struct {
	mu      sync.Mutex
	clients int
	cur     *mjpegRun
	closed  chan struct{} // closed by close: every client ends
	once    sync.Once
}

// mjpegRun is one run of the feed, from its first client to its last.
type mjpegRun struct {
	frame []byte
	err   error
	fresh chan struct{} // closed when frame or err changes
	stop  context.CancelFunc
}

func (f *mjpegFeed) init() {
	f.once.Do(func() { f.closed = make(chan struct{}) })
}

// join adds a client, starting a run for the first one; the caller
// calls leave when it is done.
func (f *mjpegFeed) join(take func(context.Context) ([]byte, error), every time.Duration, max int) (run *mjpegRun, leave func(), err error) {
	f.init()
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.closed:
		return nil, nil, errMJPEGClosed
	default:
	}
	if f.clients >= max {
		return nil, nil, errMJPEGFull
	}
	if f.clients == 0 {
		ctx, cancel := context.WithCancel(context.Background())
		f.cur = &mjpegRun{fresh: make(chan struct{}), stop: cancel}
		go f.run(ctx, f.cur, take, every)
	}
	f.clients++
	run = f.cur
	return run, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.clients--; f.clients == 0 {
			run.stop()
		}
	}, nil
}

// run takes a picture every tick until ctx ends.
func (f *mjpegFeed) run(ctx context.Context, r *mjpegRun, take func(context.Context) ([]byte, error), every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		jpg, err := take(ctx)
		if ctx.Err() != nil {
			return
		}
		f.mu.Lock()
		r.frame, r.err = jpg, err
		close(r.fresh)
		r.fresh = make(chan struct{})
		f.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// latest returns the run's newest frame, or its error, and the channel
// closed when the next one is there.
func (f *mjpegFeed) latest(r *mjpegRun) ([]byte, <-chan struct{}, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return r.frame, r.fresh, r.err
}

// close ends every client's stream (the server is shutting down).
func (f *mjpegFeed) close() {
	f.init()
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.closed:
	default:
		close(f.closed)
	}
}

// CloseStreams ends the MJPEG streams being served: register it with
// http.Server.RegisterOnShutdown, which does not end long answers.
func (a *Snapshots) CloseStreams() { a.mjpeg.close() }

// handleMJPEG serves multipart/x-mixed-replace JPEGs at the shared rate
// (DefaultMJPEGRate) for as long as the client reads.
func (a *Snapshots) handleMJPEG(w http.ResponseWriter, r *http.Request) {
	if !a.Stills.Available() {
		jsonError(w, http.StatusNotImplemented, errNoStills.Error())
		return
	}
	rate, clients := a.MJPEGRate, a.MJPEGClients
	if rate <= 0 {
		rate = DefaultMJPEGRate
	}
	if clients <= 0 {
		clients = DefaultMJPEGClients
	}
	take := func(ctx context.Context) ([]byte, error) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		jpg, _, err := a.Stills.JPEG(ctx, 0)
		return jpg, err
	}
	run, leave, err := a.mjpeg.join(take, time.Second/time.Duration(rate), clients)
	if err != nil {
		w.Header().Set("Retry-After", "5")
		jsonError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	defer leave()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary="+mjpegBoundary)
	w.WriteHeader(http.StatusOK)
	var sent []byte
	for {
		jpg, fresh, err := a.mjpeg.latest(run)
		if err != nil {
			a.Logger.Warn("camd: mjpeg stream ended", "err", err)
			return
		}
		if jpg != nil && (sent == nil || &jpg[0] != &sent[0]) {
			head := "--" + mjpegBoundary + "\r\nContent-Type: image/jpeg\r\nContent-Length: " + strconv.Itoa(len(jpg)) + "\r\n\r\n"
			if _, err := fmt.Fprint(w, head); err != nil {
				return
			}
			if _, err := w.Write(jpg); err != nil {
				return
			}
			if _, err := io.WriteString(w, "\r\n"); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
			sent = jpg
		}
		select {
		case <-fresh:
		case <-r.Context().Done():
			return
		case <-a.mjpeg.closed:
			return
		}
	}
}
