package device

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/device/settings"
	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/whep"
	"github.com/camd-project/camd/storage/eventlog"
)

// whipTarget is where the owner's settings say to publish: nothing when
// url is "".
type whipTarget struct{ url, token, pin string }

func whipTargetOf(s settings.Settings) whipTarget {
	return whipTarget{s.WHIPURL, s.WHIPToken, s.WHIPPinSHA256}
}

// whipState publishes the live stream to the owner's SFU (the whip_url,
// whip_token and whip_pin_sha256 settings; docs/whip.md). One goroutine,
// run, owns the publisher: a change of any of them ends the publish
// (DELETE of its session) and starts the next one. The log hears once per outage that
// the publish failed, and when it is back.
type whipState struct {
	hub *media.Hub
	// slots is the WHEP server's viewer limit: the publish holds one of
	// live.max_viewers while it is connected (it counts as one viewer).
	slots  slotHolder
	cert   *webrtc.Certificate
	events *eventState
	log    *slog.Logger
	// backoff bounds the pauses between attempts (tests shorten them).
	minBackoff, maxBackoff time.Duration

	wake chan struct{} // a new target; run reads want

	mu   sync.Mutex
	want whipTarget
	cur  *whep.Publisher // nil: off
	// failing: whip.failed was told for the current outage, at since.
	failing bool
	since   time.Time
}

// slotHolder holds viewer slots outside the WHEP server (*whep.Server).
type slotHolder interface{ SetHeld(n int) }

func newWHIP(hub *media.Hub, slots slotHolder, cert *webrtc.Certificate, s settings.Settings, es *eventState, log *slog.Logger) *whipState {
	return &whipState{hub: hub, slots: slots, cert: cert, events: es, log: log, want: whipTargetOf(s), wake: make(chan struct{}, 1)}
}

// settingsChanged is the settings' listener: a new endpoint, token or
// pin replaces the publish.
func (w *whipState) settingsChanged(before, after settings.Settings) {
	if whipTargetOf(before) == whipTargetOf(after) {
		return
	}
	w.mu.Lock()
	w.want = whipTargetOf(after)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default: // run has a wake-up pending: it reads the newest target
	}
}

// run publishes to the target of the settings until ctx ends.
func (w *whipState) run(ctx context.Context) {
	for {
		w.mu.Lock()
		target := w.want
		w.mu.Unlock()
		pubCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		if target.url == "" {
			close(done)
		} else {
			p, err := w.publisher(target)
			if err != nil {
				w.log.Warn("camd: whip: cannot publish", "err", err)
				close(done)
			} else {
				w.mu.Lock()
				w.cur = p
				w.mu.Unlock()
				go func() {
					defer close(done)
					if err := p.Run(pubCtx); err != nil {
						w.log.Warn("camd: whip: publish stopped", "err", err)
					}
				}()
			}
		}
		select {
		case <-ctx.Done():
		case <-w.wake:
		}
		stop()
		<-done // its session deleted
		w.mu.Lock()
		w.cur, w.failing = nil, false
		w.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
	}
}

// publisher makes the publisher of target.
func (w *whipState) publisher(target whipTarget) (*whep.Publisher, error) {
	u, err := url.Parse(target.url)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", whep.ErrPublishURL, err)
	}
	pin, ok := settings.PinBytes(target.pin)
	if !ok {
		return nil, whep.ErrPin
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	return whep.NewPublisher(w.hub, whep.PublishOptions{
		URL: target.url, Token: target.token, PinSHA256: pin, Certificate: w.cert,
		// An SFU on this host (tests, a local MediaMTX) is reached over
		// loopback.
		IncludeLoopback: host == "localhost" || (ip != nil && ip.IsLoopback()),
		MinBackoff:      w.minBackoff, MaxBackoff: w.maxBackoff,
		OnChange: w.changed, Logger: w.log,
	})
}

// changed holds a viewer slot while the publish is connected, and tells
// the event log of an outage's start and end.
func (w *whipState) changed(st whep.PublishStatus) {
	if st.State == whep.Publishing {
		w.slots.SetHeld(1)
	} else {
		w.slots.SetHeld(0)
	}
	w.mu.Lock()
	var e *eventlog.Event
	switch {
	case !w.failing && (st.State == whep.PublishRetrying || st.State == whep.PublishRefused):
		w.failing, w.since = true, time.Now()
		e = &eventlog.Event{Kind: events.WHIPFailed, Message: "publish to " + st.Endpoint + " failed: " + st.Error,
			Data: map[string]string{"endpoint": st.Endpoint, "error": st.Error, "state": string(st.State)}}
	case w.failing && st.State == whep.PublishRefused:
		// Already told: retrying, and now refused (a token revoked on the
		// SFU while it was down) changes what the owner must do.
		e = &eventlog.Event{Kind: events.WHIPFailed, Message: "publish to " + st.Endpoint + " refused: " + st.Error,
			Data: map[string]string{"endpoint": st.Endpoint, "error": st.Error, "state": string(st.State)}}
	case w.failing && st.State == whep.Publishing:
		w.failing = false
		down := time.Since(w.since).Seconds()
		e = &eventlog.Event{Kind: events.WHIPRecovered, Message: "publish to " + st.Endpoint + " is back",
			Data: map[string]string{"endpoint": st.Endpoint, "down_seconds": strconv.FormatFloat(down, 'f', 1, 64)}}
	}
	w.mu.Unlock()
	if e != nil {
		w.events.add(*e)
	}
}

// Status is the publish as the owner sees it (GET /api/v1/whip).
func (w *whipState) Status() api.WHIPStatus {
	w.mu.Lock()
	p := w.cur
	w.mu.Unlock()
	if p == nil {
		return api.WHIPStatus{State: "off"}
	}
	st := p.Status()
	out := api.WHIPStatus{
		State: string(st.State), Endpoint: st.Endpoint, Since: st.Since, Error: st.Error, Failures: st.Failures,
		Frames: st.Frames, Packets: st.Packets, Resent: st.Resent, PLIs: st.PLIs, NACKs: st.NACKs,
	}
	if !st.NextAttempt.IsZero() {
		out.NextAttempt = &st.NextAttempt
	}
	if !st.Connected.IsZero() {
		out.Connected = &st.Connected
	}
	return out
}
