package nvr

import (
	"errors"
	"fmt"
	"sync"
	"time"

	mch264 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/camd-project/camd/media"
)

// ErrBadStream: what the camera sends in its H.264 track is mostly not
// H.264 (garbage RTP).
var ErrBadStream = errors.New("nvr: the camera's video is not H.264")

// ErrBFrames: the camera's H.264 has B-frames (pictures sent out of
// their order). The recording format and the WebRTC viewers take
// pictures in the order they are shown (docs/nvr.md, "B-frames").
var ErrBFrames = fmt.Errorf("%w: the camera sends B-frames, which the NVR does not record; turn them off on the camera (baseline profile, or 0 B-frames)", ErrNoVideo)

// badLimit is how many access units that are not H.264 a pull takes,
// when they outnumber the good ones, before it gives up.
const badLimit = 50

// feed publishes one pull of a camera into the camera's hub: it starts a
// new epoch of the hub at the pull's first keyframe, turns the camera's
// RTP clocks into PTS, and tells the runner of every frame.
type feed struct {
	hub     *media.Hub
	name    string
	audio   bool
	onFrame func()
	fail    func(error)
	// keyframes holds a pending request for a keyframe from the camera
	// (nil: the camera cannot be asked).
	keyframes chan struct{}

	mu       sync.Mutex
	begun    bool
	started  time.Time // arrival of the first keyframe
	params   params
	video90k clock
	sound    clock
	soundOff time.Duration // the audio clock's zero against the video's
	good     int
	bad      int
}

// clock unwraps a 32-bit RTP clock into a duration from its first tick.
type clock struct {
	rate  int64
	valid bool
	last  uint32
	ticks int64
}

func (c *clock) at(ts uint32) time.Duration {
	if !c.valid {
		c.valid, c.last = true, ts
	}
	c.ticks += int64(int32(ts - c.last))
	c.last = ts
	return time.Duration(c.ticks * int64(time.Second) / c.rate)
}

func newFeed(hub *media.Hub, name string, audio bool, onFrame func(), fail func(error)) *feed {
	return &feed{hub: hub, name: name, audio: audio, onFrame: onFrame, fail: fail,
		video90k: clock{rate: 90000}, sound: clock{rate: 48000}}
}

// requestKeyframe asks the camera for a keyframe without blocking (the
// hub holds its lock): requests made while one is pending are one.
func (f *feed) requestKeyframe() {
	select {
	case f.keyframes <- struct{}{}:
	default:
	}
}

// videoAnnexB publishes an access unit in Annex-B form, as the WHEP
// client hands it over.
func (f *feed) videoAnnexB(au []byte, ts uint32, _ bool) {
	var nalus mch264.AnnexB
	if err := nalus.Unmarshal(au); err != nil {
		f.video(nil, nil, ts)
		return
	}
	f.video(nalus, au, ts)
}

// video publishes an access unit that came with RTP time ts (90 kHz),
// as NAL units and, when the caller has it, in Annex-B form. The newest
// SPS and PPS are put in front of an IDR that lacks them. Frames before
// the first keyframe are dropped (the hub's consumers start at one), and
// so are those that are not H.264 (plausible): when they outnumber the
// good ones, the pull fails with ErrBadStream.
func (f *feed) video(nalus [][]byte, annexB []byte, ts uint32) {
	now := time.Now()
	f.mu.Lock()
	if !plausible(nalus) {
		f.bad++
		bad, good := f.bad, f.good
		f.mu.Unlock()
		if bad >= badLimit && bad > good {
			f.fail(fmt.Errorf("%w (%d access units of %d)", ErrBadStream, bad, bad+good))
		}
		return
	}
	f.good++
	if bFrame(nalus) {
		f.mu.Unlock()
		f.fail(ErrBFrames)
		return
	}
	au, key, changed := f.params.complete(nalus)
	if au == nil || (!f.begun && !key) {
		f.mu.Unlock()
		return
	}
	if !f.begun {
		f.begun, f.started = true, now
		info := media.SourceInfo{Name: f.name, Audio: f.audio}
		if f.keyframes != nil {
			info.RequestKeyframe = f.requestKeyframe
		}
		f.hub.Begin(info)
	}
	pts := f.video90k.at(ts)
	f.mu.Unlock()
	if changed || annexB == nil {
		var err error
		if annexB, err = mch264.AnnexB(au).Marshal(); err != nil {
			return
		}
	}
	f.hub.Publish(&media.Frame{Kind: media.Video, Data: annexB, PTS: pts, Captured: now, Key: key})
	f.onFrame()
}

// audioFrame publishes an Opus packet that came with RTP time ts
// (48 kHz), once the video began.
func (f *feed) audioFrame(payload []byte, ts uint32) {
	now := time.Now()
	f.mu.Lock()
	if !f.begun {
		f.mu.Unlock()
		return
	}
	if !f.sound.valid {
		f.soundOff = now.Sub(f.started)
	}
	pts := f.soundOff + f.sound.at(ts)
	f.mu.Unlock()
	if pts < 0 {
		return
	}
	f.hub.Publish(&media.Frame{Kind: media.Audio, Data: payload, PTS: pts, Captured: now})
}

// plausible reports whether nalus look like an H.264 access unit: every
// NAL unit's forbidden bit clear and its type one a camera sends
// (slices, SEI, parameter sets, delimiters), at least one slice, and an
// IDR marked as a reference. It checks headers, not pictures: it keeps
// random bytes out of the recordings, not a broken encoder's slices.
func plausible(nalus [][]byte) bool {
	slice := false
	for _, n := range nalus {
		if len(n) == 0 || n[0]&0x80 != 0 {
			return false
		}
		switch mch264.NALUType(n[0] & 0x1f) {
		case mch264.NALUTypeNonIDR:
			slice = true
		case mch264.NALUTypeIDR:
			if n[0]&0x60 == 0 {
				return false
			}
			slice = true
		case mch264.NALUTypeSPS, mch264.NALUTypePPS, mch264.NALUTypeSEI, mch264.NALUTypeAccessUnitDelimiter,
			mch264.NALUTypeEndOfSequence, mch264.NALUTypeEndOfStream, mch264.NALUTypeFillerData:
		default:
			return false
		}
	}
	return slice
}

// bFrame reports whether nalus hold a B slice: a non-IDR slice whose
// slice_type (the second Exp-Golomb number of its header, after
// first_mb_in_slice) is B (1 or 6). The header's first bits can hold no
// emulation prevention byte: that needs 16 zero bits, a first_mb_in_slice
// beyond any picture.
func bFrame(nalus [][]byte) bool {
	for _, n := range nalus {
		if len(n) < 2 || mch264.NALUType(n[0]&0x1f) != mch264.NALUTypeNonIDR {
			continue
		}
		r := bitReader{b: n[1:]}
		if _, ok := r.ue(); !ok {
			continue
		}
		if t, ok := r.ue(); ok && t%5 == 1 {
			return true
		}
	}
	return false
}

// bitReader reads Exp-Golomb numbers, most significant bit first.
type bitReader struct {
	b   []byte
	pos int // in bits
}

func (r *bitReader) bit() (uint32, bool) {
	if r.pos >= 8*len(r.b) {
		return 0, false
	}
	v := uint32(r.b[r.pos/8]>>(7-r.pos%8)) & 1
	r.pos++
	return v, true
}

// ue reads an unsigned Exp-Golomb number (at most 31 leading zeros).
func (r *bitReader) ue() (uint32, bool) {
	zeros := 0
	for {
		b, ok := r.bit()
		if !ok || zeros > 31 {
			return 0, false
		}
		if b == 1 {
			break
		}
		zeros++
	}
	v := uint32(0)
	for range zeros {
		b, ok := r.bit()
		if !ok {
			return 0, false
		}
		v = v<<1 | b
	}
	return v + 1<<zeros - 1, true
}

// params are the newest SPS and PPS of a stream.
type params struct{ sps, pps []byte }

// complete notes the parameter sets in nalus and puts them in front of
// an IDR that comes without them; key reports an IDR. An IDR before any
// parameter set is nil: a decoder could not start from it.
func (p *params) complete(nalus [][]byte) (au [][]byte, key, changed bool) {
	hasSPS, hasPPS := false, false
	for _, n := range nalus {
		switch mch264.NALUType(n[0] & 0x1f) {
		case mch264.NALUTypeSPS:
			p.sps, hasSPS = n, true
		case mch264.NALUTypePPS:
			p.pps, hasPPS = n, true
		case mch264.NALUTypeIDR:
			key = true
		}
	}
	if !key || (hasSPS && hasPPS) {
		return nalus, key, false
	}
	if p.sps == nil || p.pps == nil {
		return nil, false, false
	}
	au = make([][]byte, 0, len(nalus)+2)
	if !hasSPS {
		au = append(au, p.sps)
	}
	if !hasPPS {
		au = append(au, p.pps)
	}
	return append(au, nalus...), true, true
}
