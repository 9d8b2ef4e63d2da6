package e2e

import (
	"context"
	_ "embed"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

//go:embed testdata/glass/glass.js
var glassJS string

// glassFrame is one frame that the page showed, its times in ms after the
// WHEP POST (glass.js).
type glassFrame struct {
	Now     float64  `json:"now"`
	Capture *float64 `json:"-"` // from glassState.Captures
	Receive *float64 `json:"receive"`
	Display *float64 `json:"display"`
	RTP     uint32   `json:"rtp"`
}

type glassState struct {
	Done            bool         `json:"done"`
	Error           string       `json:"error"`
	Frames          []glassFrame `json:"frames"`
	Answer          string       `json:"answer"`
	OfferExtensions []string     `json:"offerExtensions"`
	// Captures maps RTP timestamps to capture times.
	Captures map[uint32]float64 `json:"captures"`
	// Inbound is the video's inbound-rtp statistics at the end.
	Inbound inboundStats `json:"inbound"`
}

// inboundStats are the fields of Chromium's inbound-rtp statistics the
// benchmark reports: what its jitter buffer held the frames (seconds,
// summed over the frames it emitted) and the repairs it needed.
type inboundStats struct {
	JitterBufferDelay        float64 `json:"jitterBufferDelay"`
	JitterBufferTargetDelay  float64 `json:"jitterBufferTargetDelay"`
	JitterBufferMinimumDelay float64 `json:"jitterBufferMinimumDelay"`
	JitterBufferEmitted      float64 `json:"jitterBufferEmittedCount"`
	NACKs                    float64 `json:"nackCount"`
	PacketsLost              float64 `json:"packetsLost"`
	FramesDropped            float64 `json:"framesDropped"`
}

func (s glassState) pageError() string { return s.Error }

// glassView is one viewer's latency: from the POST until the picture shown
// is within 100 ms of live, and once steady (from a second after that),
// capture to display, capture to the last packet's arrival, and arrival to
// display (decoding and the browser's jitter buffer), each per frame.
type glassView struct {
	toLive float64
	// liveReceived is when the first live frame's last packet arrived
	// (ms after the POST), firstShown when the first frame was shown.
	liveReceived, firstShown  float64
	display, network, browser []float64
	frames                    int
	// uncaptured counts frames shown without a captureTime.
	uncaptured int
	inbound    inboundStats
}

// liveWithin is how close to its capture a shown frame must be for the
// viewer to count as live.
const liveWithin = 100.0

func (s glassState) view() (glassView, error) {
	var v glassView
	live := -1.0
	for _, f := range s.Frames {
		if c, ok := s.Captures[f.RTP]; ok {
			f.Capture = &c
		}
		if f.Capture == nil || f.Display == nil || f.Receive == nil {
			v.uncaptured++
			continue
		}
		age := *f.Display - *f.Capture
		if v.firstShown == 0 {
			v.firstShown = *f.Display
		}
		if live < 0 && age <= liveWithin {
			live = *f.Display
			v.toLive, v.liveReceived = live, *f.Receive
		}
		if live >= 0 && *f.Display >= live+1000 {
			v.display = append(v.display, age)
			v.network = append(v.network, *f.Receive-*f.Capture)
			v.browser = append(v.browser, *f.Display-*f.Receive)
		}
	}
	v.frames = len(s.Frames)
	v.inbound = s.Inbound
	if live < 0 || len(v.display) == 0 {
		return v, fmt.Errorf("never within %.0f ms of live in %d frames (%d without captureTime)", liveWithin, len(s.Frames), v.uncaptured)
	}
	return v, nil
}

// BenchmarkGlassToGlass measures live view's latency in headless Chromium,
// per viewer (one WHEP session of 6 s each): the time from the POST until
// the picture shown is within 100 ms of live ("to-live"), and once steady
// the p50/p99 from capture to display, with what the network path (capture
// to the frame's last packet in the browser) and the browser (decode,
// jitter buffer, render) each add. camd stamps every video frame with its
// capture time (abs-capture-time), which requestVideoFrameCallback
// reports as captureTime. Sub-benchmarks: the synthetic source (a fresh
// keyframe for each viewer), passthrough (the cached group of pictures,
// up to 2 s old, replayed at live.replay_bitrate's default 20 Mbps) and
// passthrough-1G (replayed at 1 Gbps), passthrough-idr (an encoder camd
// asks for a keyframe, passthrough.keyframe_command: the replay is cut
// short when it comes); with playout-delay in the offer (as
// Chromium offers it by default: camd sends min = max = 0) and without it.
// Chromium's own inbound-rtp statistics at each viewer's end give what its
// jitter buffer held the frames (jitterBufferDelay per emitted frame) and
// the repairs it needed (NACKs, packets lost). Run with -benchtime=5x for
// 5 viewers each.
func BenchmarkGlassToGlass(b *testing.B) {
	for _, src := range []string{"synthetic", "passthrough", "passthrough-1G", "passthrough-idr"} {
		for _, delay := range []bool{false, true} {
			name := src + "/playout-delay=off"
			if delay {
				name = src + "/playout-delay=0"
			}
			b.Run(name, func(b *testing.B) {
				need(b, "chromium")
				d := benchSource(b, src)
				ctx := browser(b)
				token := d.token(b)
				var toLive, display, network, browser []float64
				var jb, jbFrames, nacks, lost float64
				for range b.N {
					v := glassToGlass(b, ctx, d.addr, token, delay, 6*time.Second)
					toLive = append(toLive, v.toLive)
					display = append(display, v.display...)
					network = append(network, v.network...)
					browser = append(browser, v.browser...)
					jb += v.inbound.JitterBufferDelay
					jbFrames += v.inbound.JitterBufferEmitted
					nacks += v.inbound.NACKs
					lost += v.inbound.PacketsLost
				}
				b.ReportMetric(percentile(toLive, 0.5), "to-live-ms-p50")
				b.ReportMetric(percentile(toLive, 1), "to-live-ms-max")
				b.ReportMetric(percentile(display, 0.5), "g2g-ms-p50")
				b.ReportMetric(percentile(display, 0.99), "g2g-ms-p99")
				b.ReportMetric(percentile(network, 0.5), "net-ms-p50")
				b.ReportMetric(percentile(browser, 0.5), "browser-ms-p50")
				b.ReportMetric(percentile(browser, 0.99), "browser-ms-p99")
				b.ReportMetric(1000*jb/max(1, jbFrames), "jitterbuf-ms-mean")
				b.ReportMetric(nacks, "nacks")
				b.ReportMetric(lost, "packets-lost")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// glassToGlass runs one viewer of glass.js on camd at addr for watch.
func glassToGlass(b *testing.B, ctx context.Context, addr, token string, playoutDelay bool, watch time.Duration) glassView {
	b.Helper()
	ctx, cancel := context.WithTimeout(ctx, watch+30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Navigate("https://"+addr+"/health")); err != nil {
		b.Fatalf("navigate: %v", err)
	}
	call := fmt.Sprintf("(%s)(%q, %v, %v)", glassJS, token, playoutDelay, watch.Seconds())
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](call)); err != nil {
		b.Fatalf("starting the viewer: %v", err)
	}
	st := pollPage(b, ctx, `window.g2g`, func(s glassState) bool { return s.Done })
	v, err := st.view()
	if err != nil {
		b.Fatalf("%v\noffer's extensions: %q\nanswer:\n%s", err, st.OfferExtensions, st.Answer)
	}
	in := v.inbound
	b.Logf("%d frames shown (%d without a capture time), first at %.0f ms, live %.0f ms after the POST (its last packet at %.0f ms); jitter buffer %.1f ms a frame (target %.0f, minimum %.0f ms), %.0f NACKs, %.0f packets lost, %.0f frames dropped",
		v.frames, v.uncaptured, v.firstShown, v.toLive, v.liveReceived, 1000*in.JitterBufferDelay/max(1, in.JitterBufferEmitted),
		1000*in.JitterBufferTargetDelay/max(1, in.JitterBufferEmitted), 1000*in.JitterBufferMinimumDelay/max(1, in.JitterBufferEmitted),
		in.NACKs, in.PacketsLost, in.FramesDropped)
	return v
}
