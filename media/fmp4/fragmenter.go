package fmp4

import (
	"bytes"
	"fmt"
	"time"

	mcopus "github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	mcfmp4 "github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/h264"
)

// Track IDs and timescales of every init segment camd writes.
const (
	VideoTrack     = 1
	AudioTrack     = 2
	VideoTimescale = 90000
	AudioTimescale = 48000
)

// Options tune a Fragmenter. The zero value means defaults.
type Options struct {
	// Target is the fragment duration aimed at (default 900 ms). A
	// fragment ends at the first keyframe once it is half as long; an
	// encoding source is asked for that keyframe in time (WantsKeyframe).
	Target time.Duration
	// Max is the longest a fragment grows while no keyframe comes (a
	// passthrough stream with a long GOP): it is then cut anyway and the
	// next fragment does not start on a keyframe; that one ends at the
	// next keyframe, however short (default 3/2 Target).
	Max time.Duration
	// MaxGap is the longest pause between two pictures inside a fragment
	// (default 1 s); a longer one (frames dropped, source stalled) ends
	// the fragment and leaves a gap in the recording.
	MaxGap time.Duration
}

func (o Options) withDefaults() Options {
	if o.Target <= 0 {
		o.Target = 900 * time.Millisecond
	}
	if o.Max < o.Target {
		o.Max = o.Target * 3 / 2
	}
	if o.MaxGap <= 0 {
		o.MaxGap = time.Second
	}
	return o
}

// Init is an init segment (ftyp + moov) and what it was made from.
type Init struct {
	// Data is the encoded init segment.
	Data []byte
	// SPS and PPS are the video parameter sets in the avcC box.
	SPS, PPS []byte
	// Audio is true when the init segment has the Opus track.
	Audio bool
	// Width and Height are the picture size from the SPS.
	Width, Height int
}

// Fragment is one moof + mdat, ready to store.
type Fragment struct {
	// Init describes the tracks. Consecutive fragments share the same
	// *Init until the configuration changes.
	Init *Init
	// Start is the wall-clock time of the first picture.
	Start time.Time
	// Duration is the time the pictures cover: the start of the next
	// fragment minus Start when the next follows without a gap.
	Duration time.Duration
	// Key is true when the fragment starts with a keyframe, so that
	// playback can start there.
	Key bool
	// Data is the moof box followed by the mdat box.
	Data []byte
	// VideoFrames and AudioFrames count the samples.
	VideoFrames, AudioFrames int
	// MediaBytes is the encoded media (samples) in Data.
	MediaBytes int
}

// End is Start + Duration.
func (f *Fragment) End() time.Time { return f.Start.Add(f.Duration) }

type pending struct {
	f    *media.Frame
	wall int64 // Unix ns
}

// Fragmenter cuts a hub's frames into fragments. It is not safe for
// concurrent use.
type Fragmenter struct {
	opts Options

	epoch    uint32
	anchored bool
	anchor   int64 // Unix ns of PTS 0 in this epoch
	lastEnd  int64

	video, audio []pending
	continued    bool // the last fragment was cut without a keyframe
	requested    bool // a keyframe was asked for this fragment
	frameDur     int64

	init      *Init
	audioSeen bool
	channels  int
	seq       uint32

	audioEndPTS   time.Duration
	audioEndTicks uint64
	audioEndEpoch uint32
	audioEndValid bool

	skipped uint64
}

// Options returns the options in use, defaults filled in.
func (fr *Fragmenter) Options() Options { return fr.opts }

// New returns a Fragmenter.
func New(opts Options) *Fragmenter {
	return &Fragmenter{opts: opts.withDefaults(), frameDur: int64(time.Second / 30)}
}

// clockJump is how far a picture's capture time may stray from the time
// its PTS predicts before the fragmenter follows the wall clock again.
const clockJump = 2 * time.Second

// Push adds one frame. It returns the fragment that this frame completed,
// if any. Video frames before the first keyframe and audio before the
// first picture are dropped.
func (fr *Fragmenter) Push(f *media.Frame) *Fragment {
	var out *Fragment
	if fr.anchored && f.Epoch() != fr.epoch {
		// The source restarted: its timestamps start again.
		out = fr.close(-1)
		fr.anchored = false
	}
	w := fr.wall(f)
	switch f.Kind {
	case media.Video:
		if n := len(fr.video); n > 0 {
			last := fr.video[n-1].wall
			elapsed := time.Duration(w - fr.video[0].wall)
			if w > last && time.Duration(w-last) <= fr.opts.MaxGap {
				fr.frameDur = w - last
			}
			switch {
			case w <= last:
				return out // timestamps must grow
			case time.Duration(w-last) > fr.opts.MaxGap:
				out = fr.close(-1)
			case f.Key && (elapsed >= fr.opts.Target/2 || !fr.video[0].f.Key):
				// A continuation (cut without a keyframe) ends at the
				// first keyframe, so that playback can start there.
				out = fr.close(w)
			case elapsed+time.Duration(fr.frameDur/2) >= fr.opts.Max:
				out = fr.close(w)
				fr.continued = true
			}
		}
		if len(fr.video) == 0 {
			if !f.Key && !fr.continued {
				fr.skipped++
				return out
			}
			if f.Key && !f.Captured.IsZero() {
				if d := f.Captured.UnixNano() - w; d > int64(clockJump) || d < -int64(clockJump) {
					fr.anchor += d // the wall clock was set: follow it
					w += d
				}
			}
			fr.requested = false
		}
		fr.continued = false
		fr.video = append(fr.video, pending{f, w})
	case media.Audio:
		if len(fr.video) == 0 || len(f.Data) == 0 {
			return out
		}
		fr.audioSeen = true
		if f.Data[0]&0x04 != 0 {
			fr.channels = 2
		} else if fr.channels == 0 {
			fr.channels = 1
		}
		fr.audio = append(fr.audio, pending{f, w})
	}
	return out
}

// wall maps a frame's PTS to Unix ns. The first frame of an epoch sets the
// anchor from its capture time.
func (fr *Fragmenter) wall(f *media.Frame) int64 {
	if !fr.anchored {
		fr.anchored = true
		fr.epoch = f.Epoch()
		captured := f.Captured
		if captured.IsZero() {
			captured = time.Now()
		}
		a := captured.UnixNano() - int64(f.PTS)
		// A restarted source must not overlap what was already cut, unless
		// the clock itself went back.
		if over := fr.lastEnd - (a + int64(f.PTS)); over > 0 && over < int64(clockJump) {
			a += over
		}
		fr.anchor = a
	}
	return max(fr.anchor+int64(f.PTS), 0)
}

// WantsKeyframe reports, once per fragment, that the fragment is due to
// end within about a frame and a half: an encoding source asked for a
// keyframe now makes it in time.
func (fr *Fragmenter) WantsKeyframe() bool {
	n := len(fr.video)
	if n == 0 || fr.requested {
		return false
	}
	elapsed := fr.video[n-1].wall - fr.video[0].wall
	if elapsed+fr.frameDur*3/2 < int64(fr.opts.Target) {
		return false
	}
	fr.requested = true
	return true
}

// Flush ends the fragment being built, if any, estimating its last
// picture's duration.
func (fr *Fragmenter) Flush() *Fragment { return fr.close(-1) }

// Skipped counts video frames dropped while waiting for a keyframe.
func (fr *Fragmenter) Skipped() uint64 { return fr.skipped }

// close ends the current fragment; next is the wall time of the picture
// that follows without a gap, or -1.
func (fr *Fragmenter) close(next int64) *Fragment {
	video, audio := fr.video, fr.audio
	fr.video, fr.audio = nil, nil
	if len(video) == 0 {
		return nil
	}
	first := video[0]
	if first.f.Key {
		fr.updateInit(first.f.Data)
	}
	if fr.init == nil {
		return nil // no parameter sets yet: nothing decodable
	}

	frag := &Fragment{Init: fr.init, Start: time.Unix(0, first.wall), Key: first.f.Key}
	vs := make([]*mcfmp4.Sample, len(video))
	for i, p := range video {
		end := next
		if i+1 < len(video) {
			end = video[i+1].wall
		} else if end < 0 {
			end = p.wall + fr.frameDur
		}
		s := &mcfmp4.Sample{Duration: uint32(ticks(end, VideoTimescale) - ticks(p.wall, VideoTimescale))}
		if err := s.FillH264(0, h264.NALUs(p.f.Data)); err != nil {
			s.Payload = nil
		}
		s.IsNonSyncSample = !p.f.Key
		frag.MediaBytes += len(s.Payload)
		vs[i] = s
		if i == len(video)-1 {
			frag.Duration = time.Duration(end - first.wall)
		}
	}
	frag.VideoFrames = len(vs)
	part := mcfmp4.Part{
		SequenceNumber: fr.seq,
		Tracks:         []*mcfmp4.PartTrack{{ID: VideoTrack, BaseTime: ticks(first.wall, VideoTimescale), Samples: vs}},
	}
	fr.seq++

	if len(audio) > 0 && fr.init.Audio {
		a0 := audio[0]
		base := ticks(a0.wall, AudioTimescale)
		if fr.audioEndValid && fr.audioEndEpoch == a0.f.Epoch() && a0.f.PTS == fr.audioEndPTS {
			base = fr.audioEndTicks // continuous: no rounding step
		}
		as := make([]*mcfmp4.Sample, len(audio))
		total := uint64(0)
		for i, p := range audio {
			var d int64
			if i+1 < len(audio) {
				d = durTicks(audio[i+1].f.PTS-p.f.PTS, AudioTimescale)
			} else {
				d = mcopus.PacketDuration2(p.f.Data)
			}
			if d <= 0 {
				d = 960
			}
			as[i] = &mcfmp4.Sample{Duration: uint32(d), Payload: p.f.Data}
			frag.MediaBytes += len(p.f.Data)
			total += uint64(d)
		}
		last := audio[len(audio)-1]
		fr.audioEndPTS = last.f.PTS + time.Duration(as[len(as)-1].Duration)*time.Second/AudioTimescale
		fr.audioEndTicks = base + total
		fr.audioEndEpoch = last.f.Epoch()
		fr.audioEndValid = true
		frag.AudioFrames = len(as)
		part.Tracks = append(part.Tracks, &mcfmp4.PartTrack{ID: AudioTrack, BaseTime: base, Samples: as})
	}

	var buf seekablebuffer.Buffer
	buf.Grow(frag.MediaBytes + 512 + 16*(len(video)+len(audio)))
	if err := part.Marshal(&buf); err != nil {
		return nil
	}
	frag.Data = buf.Bytes()
	fr.lastEnd = frag.End().UnixNano()
	return frag
}

// updateInit makes a new init segment when a keyframe's parameter sets
// differ from the current ones or audio appeared.
func (fr *Fragmenter) updateInit(au []byte) {
	var sps, pps []byte
	for _, n := range h264.NALUs(au) {
		switch n[0] & 0x1f {
		case 7:
			if sps == nil {
				sps = n
			}
		case 8:
			if pps == nil {
				pps = n
			}
		}
	}
	if sps == nil || pps == nil {
		return
	}
	if fr.init != nil && bytes.Equal(sps, fr.init.SPS) && bytes.Equal(pps, fr.init.PPS) && fr.init.Audio == fr.audioSeen {
		return
	}
	in, err := NewInit(sps, pps, fr.audioSeen, fr.channels)
	if err == nil {
		fr.init = in
	}
}

// NewInit builds the init segment for H.264 with the given parameter
// sets and, if audio, an Opus track with channels channels.
func NewInit(sps, pps []byte, audio bool, channels int) (*Init, error) {
	info, err := h264.ParseSPS(sps)
	if err != nil {
		return nil, fmt.Errorf("fmp4: %w", err)
	}
	in := &Init{SPS: bytes.Clone(sps), PPS: bytes.Clone(pps), Audio: audio, Width: info.Width, Height: info.Height}
	init := mcfmp4.Init{Tracks: []*mcfmp4.InitTrack{{
		ID: VideoTrack, TimeScale: VideoTimescale,
		Codec: &mp4.CodecH264{SPS: in.SPS, PPS: in.PPS},
	}}}
	if audio {
		init.Tracks = append(init.Tracks, &mcfmp4.InitTrack{
			ID: AudioTrack, TimeScale: AudioTimescale,
			Codec: &mp4.CodecOpus{ChannelCount: max(channels, 1)},
		})
	}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return nil, fmt.Errorf("fmp4: init segment: %w", err)
	}
	in.Data = buf.Bytes()
	return in, nil
}

// ticks converts Unix ns to a timescale without overflowing.
func ticks(ns int64, scale uint64) uint64 {
	if ns < 0 {
		return 0
	}
	u := uint64(ns)
	return u/1e9*scale + u%1e9*scale/1e9
}

// durTicks converts a duration to a timescale, rounding to nearest.
func durTicks(d time.Duration, scale uint64) int64 {
	return (int64(d)*int64(scale) + 5e8) / 1e9
}
