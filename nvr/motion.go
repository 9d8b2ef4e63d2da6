package nvr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/storage/eventlog"
)

// Motion mode (docs/nvr.md, "Motion"): the NVR has no pictures of a
// camera to look at, so a camera in motion mode is recorded on the
// motion the camera itself reports: a camd camera's motion events (its
// event stream, with the NVR's credential), an ONVIF camera's motion
// topics (a PullPoint subscription of its events service). A camera
// that reports none (RTSP by URL, ONVIF without events) cannot be in
// motion mode: ErrNoMotion.

// motionSource reports whether the camera tells of its motion.
func (rec record) motionSource() bool {
	switch rec.Camera.Kind {
	case KindCamd:
		return true
	case KindONVIF:
		return rec.Secret.Events != ""
	}
	return false
}

// motionLoop watches the camera's motion while its mode is motion,
// until ctx ends; a change of mode comes on r.modes.
func (r *runner) motionLoop(ctx context.Context, rec record) {
	mode := rec.Camera.Recording
	for {
		stop, done := func() {}, make(chan struct{})
		if mode == RecordMotion && rec.motionSource() {
			wctx, cancel := context.WithCancel(ctx)
			stop = cancel
			go func() {
				defer close(done)
				r.watchMotion(wctx, rec)
			}()
		} else {
			close(done)
		}
		select {
		case <-ctx.Done():
		case mode = <-r.modes:
		}
		stop()
		<-done
		if ctx.Err() != nil {
			return
		}
	}
}

// setMode tells the motion loop of the camera's new recording mode.
func (r *runner) setMode(mode Recording) {
	for {
		select {
		case r.modes <- mode:
			return
		default:
		}
		select {
		case <-r.modes: // a mode not taken yet: the newer one replaces it
		default:
		}
	}
}

// watchMotion follows the camera's motion reports, again after a pause
// when they fail, until ctx ends. Motion that was on when a watch ended
// is ended then (its end may never come).
func (r *runner) watchMotion(ctx context.Context, rec record) {
	backoff := r.m.opts.MinBackoff
	log := r.m.log.With("camera", r.id)
	following := func() { log.Debug("nvr: following the camera's motion") }
	for ctx.Err() == nil {
		active := false
		report := func(on bool) {
			if on != active {
				active = on
				r.m.opts.Motion(rec.Camera, on, time.Now())
			}
		}
		var err error
		start := time.Now()
		switch rec.Camera.Kind {
		case KindCamd:
			err = camdMotion(ctx, rec, following, report)
		default:
			err = onvifMotion(ctx, rec, r.m.opts.Timeout, following, report)
		}
		report(false)
		if ctx.Err() != nil {
			return
		}
		log.Debug("nvr: motion reports ended", "err", err)
		if time.Since(start) > r.m.opts.MaxBackoff {
			backoff = r.m.opts.MinBackoff
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, r.m.opts.MaxBackoff)
	}
}

// camdMotion follows a camd camera's event stream (its motion and
// motion.end events) until it ends; following is called once the camera
// answered (it subscribed the stream before).
func camdMotion(ctx context.Context, rec record, following func(), report func(bool)) error {
	client := camdClient(rec.Secret.Fingerprint, nil)
	client.Timeout = 0 // a stream: ctx ends it
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+rec.Camera.Address+"/api/v1/events/stream?type="+events.Motion+","+events.MotionEnd, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+rec.Secret.Token)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: events: %s", ErrUnreachable, resp.Status)
	}
	following()
	return followMotion(resp.Body, report)
}

// followMotion reads a camd event stream and reports its motion.
func followMotion(body io.Reader, report func(bool)) error {
	rd := events.NewReader(body)
	for {
		f, err := rd.Next()
		if err != nil {
			return err
		}
		if f.Event != "" && f.Event != "message" {
			return fmt.Errorf("nvr: the camera ended its event stream (%s)", f.Event)
		}
		var e eventlog.Event
		if f.Data == "" || json.Unmarshal([]byte(f.Data), &e) != nil {
			continue
		}
		switch e.Kind {
		case events.Motion:
			report(true)
		case events.MotionEnd:
			report(false)
		}
	}
}

const (
	onvifEventsNS = "http://www.onvif.org/ver10/events/wsdl"
	wsnNS         = "http://docs.oasis-open.org/wsn/b-2"
)

// onvifMotion subscribes to an ONVIF camera's events (a PullPoint) and
// pulls its messages until ctx ends or the camera fails; the motion
// topics (RuleEngine/CellMotionDetector/Motion IsMotion,
// VideoSource/MotionAlarm State) are reported. following is called once
// the subscription is made.
func onvifMotion(ctx context.Context, rec record, timeout time.Duration, following func(), report func(bool)) error {
	c := &onvifClient{http: &http.Client{Timeout: timeout + 10*time.Second}, user: rec.Secret.User, password: rec.Secret.Password}
	defer c.http.CloseIdleConnections()
	var sub struct {
		Address string `xml:"Body>CreatePullPointSubscriptionResponse>SubscriptionReference>Address"`
	}
	if err := c.call(ctx, rec.Secret.Events, `<tev:CreatePullPointSubscription xmlns:tev="`+onvifEventsNS+`"><tev:InitialTerminationTime>PT60S</tev:InitialTerminationTime></tev:CreatePullPointSubscription>`, &sub); err != nil {
		return err
	}
	pull := strings.TrimSpace(sub.Address)
	if pull == "" {
		return fmt.Errorf("%w: onvif: no subscription address", ErrUnreachable)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		var none struct{}
		c.call(ctx, pull, `<wsnt:Unsubscribe xmlns:wsnt="`+wsnNS+`"/>`, &none)
	}()
	following()
	renewed := time.Now()
	for {
		var msgs pullMessages
		if err := c.call(ctx, pull, `<tev:PullMessages xmlns:tev="`+onvifEventsNS+`"><tev:Timeout>PT5S</tev:Timeout><tev:MessageLimit>16</tev:MessageLimit></tev:PullMessages>`, &msgs); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		for _, on := range msgs.motion() {
			report(on)
		}
		if time.Since(renewed) > 20*time.Second {
			var none struct{}
			if err := c.call(ctx, pull, `<wsnt:Renew xmlns:wsnt="`+wsnNS+`"><wsnt:TerminationTime>PT60S</wsnt:TerminationTime></wsnt:Renew>`, &none); err != nil {
				return err
			}
			renewed = time.Now()
		}
	}
}

// pullMessages is a PullMessagesResponse.
type pullMessages struct {
	Messages []struct {
		Topic string `xml:"Topic"`
		Items []struct {
			Name  string `xml:"Name,attr"`
			Value string `xml:"Value,attr"`
		} `xml:"Message>Message>Data>SimpleItem"`
	} `xml:"Body>PullMessagesResponse>NotificationMessage"`
}

// motion is what the messages say of motion, in order.
func (p pullMessages) motion() []bool {
	var out []bool
	for _, m := range p.Messages {
		topic := strings.TrimSpace(m.Topic) // tns1:… (whatever the prefix)
		var name string
		switch {
		case strings.HasSuffix(topic, "CellMotionDetector/Motion"):
			name = "IsMotion"
		case strings.HasSuffix(topic, "VideoSource/MotionAlarm"):
			name = "State"
		default:
			continue
		}
		for _, it := range m.Items {
			if it.Name == name {
				out = append(out, strings.EqualFold(strings.TrimSpace(it.Value), "true"))
			}
		}
	}
	return out
}

// ErrNoMotion: the camera reports no motion (an RTSP camera, an ONVIF
// camera without events), so it cannot be recorded in motion mode.
var ErrNoMotion = errors.New("nvr: the camera reports no motion; motion mode needs a camd camera or an ONVIF camera with events (record it continuously)")
