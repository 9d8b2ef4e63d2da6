package rtsp

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"

	"github.com/camd-project/camd/media"
)

// lostGap is the least time between keyframe requests of one session
// whose queue overflowed.
const lostGap = time.Second

// session is one RTSP client playing the live stream: a consumer of the
// hub from PLAY to its end, writing into a gortsplib stream of its own
// (which makes its RTCP sender reports and RTP-Info).
type session struct {
	srv     *Server
	ss      *gortsplib.ServerSession
	id      string
	user    string
	stream  *gortsplib.ServerStream
	desc    *description.Session
	created time.Time

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed once send returned (or never started)

	mu         sync.Mutex
	consumer   *media.Consumer
	playing    bool
	played     time.Time
	firstFrame time.Duration
	frames     uint64
	lastLost   time.Time
	// transportName is the transport, read once the session plays
	// (gortsplib set it at SETUP, before the PLAY that leads here).
	transportName string
}

func newSession(srv *Server, ss *gortsplib.ServerSession, id, user string, stream *gortsplib.ServerStream, desc *description.Session) *session {
	ctx, cancel := context.WithCancel(context.Background())
	return &session{srv: srv, ss: ss, id: id, user: user, stream: stream, desc: desc, created: time.Now(),
		ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

// play subscribes to the hub and starts sending, once.
func (s *session) play() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.playing || s.ctx.Err() != nil {
		return
	}
	s.playing, s.played, s.transportName = true, time.Now(), s.transport()
	s.consumer = s.srv.hub.Subscribe(media.ConsumerOptions{Name: "rtsp " + s.id[:8], QueueFrames: s.srv.opts.QueueFrames, JumpToLive: true})
	c := s.consumer
	go s.send(c)
	s.srv.log.Info("rtsp: session playing", "session", s.id, "user", s.user, "transport", s.transportName)
}

// transport is the session's transport, once set up.
func (s *session) transport() string {
	if t := s.ss.SetuppedTransport(); t != nil {
		return t.String()
	}
	return ""
}

// close ends the session (gortsplib closed it) and waits for its sender.
func (s *session) close(reason error) {
	s.mu.Lock()
	s.cancel()
	c, playing := s.consumer, s.playing
	s.mu.Unlock()
	if c != nil {
		c.Close()
	}
	if playing {
		<-s.done
	}
	s.stream.Close()
	s.srv.log.Info("rtsp: session ended", "session", s.id, "user", s.user, "reason", reason)
}

// lost asks for a keyframe after the session's queue overflowed.
func (s *session) lost() {
	s.mu.Lock()
	c, now := s.consumer, time.Now()
	if c == nil || now.Sub(s.lastLost) < lostGap {
		s.mu.Unlock()
		return
	}
	s.lastLost = now
	s.mu.Unlock()
	c.RequestKeyframe()
}

// track is one media of the session's stream: its RTP numbering.
type track struct {
	media *description.Media
	pt    uint8
	seq   uint16
	clock rtpClock
}

func newTrack(m *description.Media, f format.Format) *track {
	var b [2]byte
	rand.Read(b[:])
	t := &track{media: m, pt: f.PayloadType(), seq: binary.BigEndian.Uint16(b[:])}
	t.clock = rtpClock{rate: f.ClockRate(), fallback: 20 * time.Millisecond}
	if m.Type == description.MediaTypeVideo {
		t.clock.fallback = 33 * time.Millisecond
	}
	return t
}

// write sends payloads as the RTP packets of one frame (nil: the frame's
// own, Frame.Payload).
func (t *track) write(st *gortsplib.ServerStream, f *media.Frame, replay bool, payloads [][]byte, ntp time.Time) error {
	ts := t.clock.stamp(f, replay)
	if payloads == nil {
		// The frame's RTP payloads, each its own (the stream may
		// queue the packet): Frame.Payload into a nil buffer.
		for i := range f.Packets() {
			payloads = append(payloads, f.Payload(i, nil))
		}
	}
	for i, p := range payloads {
		t.seq++
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: t.pt, SequenceNumber: t.seq, Timestamp: ts,
			Marker: t.media.Type == description.MediaTypeVideo && i == len(payloads)-1}, Payload: p}
		if err := st.WritePacketRTPWithNTP(t.media, pkt, ntp); err != nil {
			return err
		}
	}
	return nil
}

// send forwards the hub's frames to the client until the session ends.
func (s *session) send(c *media.Consumer) {
	defer close(s.done)
	var video, opus, pcmu *track
	for _, m := range s.desc.Medias {
		switch f := m.Formats[0].(type) {
		case *format.H264:
			video = newTrack(m, f)
		case *format.Opus:
			opus = newTrack(m, f)
		case *format.G711:
			pcmu = newTrack(m, f)
		}
	}
	for {
		f, replay, err := c.Next(s.ctx)
		if err != nil {
			return // the session ended, or the hub closed
		}
		ntp := f.Captured
		if replay || ntp.IsZero() {
			ntp = time.Now()
		}
		switch f.Kind {
		case media.Video:
			if err = video.write(s.stream, f, replay, nil, ntp); err == nil {
				s.mu.Lock()
				if s.frames == 0 {
					s.firstFrame = time.Since(s.played)
				}
				s.frames++
				s.mu.Unlock()
			}
		case media.Audio:
			if opus != nil {
				err = opus.write(s.stream, f, replay, [][]byte{f.Data}, ntp)
			}
			if pcmu != nil && len(f.G711) > 0 && err == nil {
				err = pcmu.write(s.stream, f, replay, [][]byte{f.G711}, ntp)
			}
		}
		if err != nil {
			s.srv.log.Info("rtsp: send failed", "session", s.id, "err", err)
			return
		}
		if replay {
			// The cached group of pictures goes out faster than real
			// time, paced so as not to overflow the client's queue.
			pause := time.Duration(len(f.Data)) * 8 * time.Second / time.Duration(s.srv.opts.ReplayBitrate)
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(pause):
			}
		}
	}
}

func (s *session) stats() SessionStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := SessionStats{ID: s.id, User: s.user, Transport: s.transportName, Created: s.created, FirstFrame: s.firstFrame, Frames: s.frames, State: "setup"}
	if s.playing {
		st.State = "playing"
	}
	if s.consumer != nil {
		st.Dropped = s.consumer.Stats().Dropped
	}
	return st
}

// rtpClock maps the PTS of one track's frames to RTP timestamps. It
// starts at the first frame's PTS in the track's clock (so that every
// track of a session starts from the same instant), squeezes frames
// replayed from the cache one tick apart (decoded at once, not played
// out late), and continues one frame interval after the last timestamp
// across a new source epoch or a step back.
type rtpClock struct {
	rate     int
	fallback time.Duration

	started bool
	last    uint32
	lastPTS time.Duration
	epoch   uint32
}

func (c *rtpClock) ticks(d time.Duration) uint32 {
	return uint32(int64(d) * int64(c.rate) / int64(time.Second))
}

func (c *rtpClock) stamp(f *media.Frame, replay bool) uint32 {
	var ts uint32
	switch {
	case !c.started:
		ts = c.ticks(f.PTS)
	case replay:
		ts = c.last + 1
	case f.Epoch() != c.epoch || f.PTS <= c.lastPTS:
		ts = c.last + c.ticks(c.fallback)
	default:
		ts = c.last + c.ticks(f.PTS-c.lastPTS)
	}
	c.started, c.last, c.lastPTS, c.epoch = true, ts, f.PTS, f.Epoch()
	return ts
}
