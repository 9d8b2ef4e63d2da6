package network

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/camd-project/camd/media/snapshot"
)

// pictures gives the camera's next raw picture (*snapshot.Grabber).
type pictures interface {
	Grab(ctx context.Context) (snapshot.Picture, error)
}

// CodeOptions configure a CodeReader; zero durations mean defaults.
type CodeOptions struct {
	// Pictures are the camera's raw pictures; Join joins the network a
	// code names (a Link's Join). Both are required.
	Pictures pictures
	Join     func(ctx context.Context, c Credentials) (Status, error)
	// Window is how long the owner's "scan Wi-Fi code" lasts (default 2 min).
	Window time.Duration
	// Interval is the pause between two pictures read (default 250 ms).
	Interval time.Duration
	Logger   *slog.Logger
}

// CodeState is where a Wi-Fi code window is.
type CodeState string

// States of a Wi-Fi code window.
const (
	CodeIdle     CodeState = "idle"
	CodeScanning CodeState = "scanning"
	CodeJoining  CodeState = "joining"
	CodeJoined   CodeState = "joined"
	CodeFailed   CodeState = "failed"
	CodeExpired  CodeState = "expired"
	CodeStopped  CodeState = "stopped"
)

// CodeStatus is the last or current window. It never holds a passphrase.
type CodeStatus struct {
	State CodeState `json:"state"`
	// Until is when a scanning window closes.
	Until time.Time `json:"until,omitzero"`
	// SSID is the network the code named.
	SSID string `json:"ssid,omitempty"`
	// Error and Reason (as network.Reason) say why a join failed.
	Error  string `json:"error,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// CodeReader reads a WIFI: QR code shown to the lens, in a window the
// owner opens (never always on), and joins the network it names.
type CodeReader struct {
	opts CodeOptions
	log  *slog.Logger

	mu     sync.Mutex
	status CodeStatus
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewCodeReader makes a reader whose window is closed.
func NewCodeReader(opts CodeOptions) *CodeReader {
	opts.Window = cmp.Or(opts.Window, 2*time.Minute)
	opts.Interval = cmp.Or(opts.Interval, 250*time.Millisecond)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &CodeReader{opts: opts, log: opts.Logger, status: CodeStatus{State: CodeIdle}}
}

// Status is the window now.
func (r *CodeReader) Status() CodeStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// Start opens the window; one already open stays as it is.
func (r *CodeReader) Start() CodeStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status.State == CodeScanning || r.status.State == CodeJoining {
		return r.status
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.Window)
	r.cancel = cancel
	r.status = CodeStatus{State: CodeScanning, Until: time.Now().Add(r.opts.Window)}
	r.log.Info("network: reading a Wi-Fi code", "until", r.status.Until)
	r.wg.Go(func() { r.run(ctx) })
	return r.status
}

// Stop closes the window and waits for it; a join under way ends too.
func (r *CodeReader) Stop() {
	r.mu.Lock()
	if r.cancel != nil {
		r.cancel()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// Close is Stop; it is safe twice.
func (r *CodeReader) Close() { r.Stop() }

func (r *CodeReader) set(st CodeStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = st
}

func (r *CodeReader) run(ctx context.Context) {
	defer func() {
		r.mu.Lock()
		r.cancel()
		r.mu.Unlock()
	}()
	c, err := r.read(ctx)
	if err != nil {
		state := CodeStopped
		if errors.Is(err, context.DeadlineExceeded) {
			state = CodeExpired
		}
		r.log.Info("network: Wi-Fi code window closed", "state", state)
		r.set(CodeStatus{State: state})
		return
	}
	r.log.Info("network: read a Wi-Fi code", "wifi", c)
	r.set(CodeStatus{State: CodeJoining, SSID: c.SSID})
	// The join has its own time limits: the window is for finding the
	// code, not for joining.
	if _, err := r.opts.Join(context.WithoutCancel(ctx), c); err != nil {
		r.set(CodeStatus{State: CodeFailed, SSID: c.SSID, Error: err.Error(), Reason: Reason(err)})
		return
	}
	r.set(CodeStatus{State: CodeJoined, SSID: c.SSID})
}

// read reads pictures until one shows a Wi-Fi code or ctx ends. Other
// QR codes (the pairing code, a URL) are passed over.
func (r *CodeReader) read(ctx context.Context) (Credentials, error) {
	tick := time.NewTicker(r.opts.Interval)
	defer tick.Stop()
	for {
		pic, err := r.opts.Pictures.Grab(ctx)
		if err == nil {
			if text, ok := DecodeQR(pic.Image); ok {
				if c, err := ParseWiFiCode(text); err == nil {
					return c, nil
				}
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return Credentials{}, ctx.Err()
		}
	}
}
