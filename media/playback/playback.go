// Package playback plays a recording back into a media hub, so that a
// viewer watches it over WebRTC like the live stream: it reads the
// fragmented MP4 of an export (media/export.File: an init segment, then
// moof+mdat fragments timed from zero) and publishes its H.264
// access units (Annex-B, parameter sets in front of each keyframe) and
// Opus packets at the pace of their timestamps.
package playback

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	mch264 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	mcfmp4 "github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/h264"
)

// ErrFormat marks input that is not a playable fragmented MP4.
var ErrFormat = errors.New("playback: not a fragmented MP4 with H.264")

// maxBox bounds one box: a fragment of a few seconds of video (a moof or
// an mdat) is far smaller.
const maxBox = 64 << 20

// Options tune Play.
type Options struct {
	// Unpaced publishes as fast as the hub takes frames (tests).
	Unpaced bool
}

// Stats is what Play published.
type Stats struct {
	Video, Audio, Keyframes int
	// Duration is the timestamp of the last frame published.
	Duration time.Duration
}

type track struct {
	id        int
	timescale uint32
	kind      media.Kind
}

type sample struct {
	pts  time.Duration
	kind media.Kind
	key  bool
	data []byte // video: AVCC, length-prefixed NAL units
}

// Play publishes the recording read from r into h until its end, ctx's
// end or a read error. It calls h.Begin first.
func Play(ctx context.Context, r io.Reader, h *media.Hub, opts Options) (Stats, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var st Stats
	var init []byte
	var typ string
	var box []byte
	var err error
	for {
		typ, box, err = readBox(br)
		if err != nil {
			return st, fmt.Errorf("%w: %v", ErrFormat, err)
		}
		if typ == "moof" {
			break
		}
		init = append(init, box...)
	}
	video, audio, sps, pps, err := tracks(init)
	if err != nil {
		return st, err
	}
	// Keyframes go out with the parameter sets, as on the live path: the
	// init segment's, or newer ones carried in the samples.
	var params h264.ParamSets
	params.Complete(h264.Join([][]byte{sps, pps}))
	h.Begin(media.SourceInfo{Name: "recording", ForcesKeyframes: false})
	start := time.Now()
	// Timestamps count from the first fragment's earliest sample: an
	// export starts at zero, a recording's own fragments at the wall
	// clock.
	origin := time.Duration(-1)
	for {
		// box is a moof; its mdat follows.
		mtyp, mdat, err := readBox(br)
		if err != nil || mtyp != "mdat" {
			return st, fmt.Errorf("%w: a moof without its mdat", ErrFormat)
		}
		var parts mcfmp4.Parts
		if err := parts.Unmarshal(append(box, mdat...)); err != nil {
			return st, fmt.Errorf("%w: fragment: %v", ErrFormat, err)
		}
		list := samples(parts, video, audio)
		if origin < 0 && len(list) > 0 {
			origin = list[0].pts
		}
		for _, s := range list {
			s.pts -= origin
			if !opts.Unpaced {
				if err := sleepUntil(ctx, start.Add(s.pts)); err != nil {
					return st, nil
				}
			} else if ctx.Err() != nil {
				return st, nil
			}
			data := s.data
			if s.kind == media.Video {
				var avcc mch264.AVCC
				if avcc.Unmarshal(s.data) != nil {
					continue
				}
				au := h264.Join(avcc)
				au.Key = au.Key || s.key
				data = params.Complete(au).Data
			}
			h.Publish(&media.Frame{Kind: s.kind, Data: data, PTS: s.pts, Captured: time.Now(), Key: s.key})
			st.Duration = s.pts
			if s.kind == media.Video {
				st.Video++
				if s.key {
					st.Keyframes++
				}
			} else {
				st.Audio++
			}
		}
		typ, box, err = readBox(br)
		switch {
		case errors.Is(err, io.EOF):
			return st, nil
		case err != nil:
			return st, fmt.Errorf("%w: %v", ErrFormat, err)
		case typ != "moof":
			return st, fmt.Errorf("%w: %q box between fragments", ErrFormat, typ)
		}
	}
}

// readBox reads one whole box and returns its type.
func readBox(r *bufio.Reader) (string, []byte, error) {
	hdr, err := r.Peek(8)
	if err != nil {
		if errors.Is(err, io.EOF) && len(hdr) == 0 {
			return "", nil, io.EOF
		}
		return "", nil, io.ErrUnexpectedEOF
	}
	size := uint64(binary.BigEndian.Uint32(hdr))
	typ := string(hdr[4:8])
	if size == 1 {
		big, err := r.Peek(16)
		if err != nil {
			return "", nil, io.ErrUnexpectedEOF
		}
		size = binary.BigEndian.Uint64(big[8:])
	}
	if size < 8 || size > maxBox {
		return "", nil, fmt.Errorf("%q box of %d bytes", typ, size)
	}
	// Read what is there rather than allocate what the header claims.
	b, err := io.ReadAll(io.LimitReader(r, int64(size)))
	if err != nil || uint64(len(b)) != size {
		return "", nil, io.ErrUnexpectedEOF
	}
	return typ, b, nil
}

// tracks finds the H.264 track (required) and the Opus track in an init
// segment.
func tracks(init []byte) (video, audio track, sps, pps []byte, err error) {
	var in mcfmp4.Init
	if err := in.Unmarshal(bytes.NewReader(init)); err != nil {
		return video, audio, nil, nil, fmt.Errorf("%w: init segment: %v", ErrFormat, err)
	}
	for _, t := range in.Tracks {
		switch c := t.Codec.(type) {
		case *mp4.CodecH264:
			video = track{id: t.ID, timescale: t.TimeScale, kind: media.Video}
			sps, pps = c.SPS, c.PPS
		case *mp4.CodecOpus:
			audio = track{id: t.ID, timescale: t.TimeScale, kind: media.Audio}
		}
	}
	if video.id == 0 || video.timescale == 0 {
		return video, audio, nil, nil, fmt.Errorf("%w: no H.264 track", ErrFormat)
	}
	return video, audio, sps, pps, nil
}

// samples lists a fragment's samples of both tracks in timestamp order.
func samples(parts mcfmp4.Parts, video, audio track) []sample {
	var out []sample
	for _, p := range parts {
		for _, pt := range p.Tracks {
			var t track
			switch pt.ID {
			case video.id:
				t = video
			case audio.id:
				t = audio
			default:
				continue
			}
			if t.timescale == 0 {
				continue
			}
			at := pt.BaseTime
			for _, s := range pt.Samples {
				out = append(out, sample{
					pts:  duration(int64(at)+int64(s.PTSOffset), int64(t.timescale)),
					kind: t.kind,
					key:  t.kind == media.Video && !s.IsNonSyncSample,
					data: s.Payload,
				})
				at += uint64(s.Duration)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b sample) int { return cmp.Compare(a.pts, b.pts) })
	return out
}

// duration converts ticks of a timescale without overflowing (a
// recording's own fragments count ticks from 1970).
func duration(ticks, scale int64) time.Duration {
	return time.Duration(ticks/scale)*time.Second + time.Duration(ticks%scale)*time.Second/time.Duration(scale)
}

// sleepUntil waits for t, or returns ctx's error.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
