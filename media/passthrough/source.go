package passthrough

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/h264"
)

// ErrNoKeyframe means a pass over a file published nothing: it holds no
// keyframe with known parameter sets that is followed by a complete
// access unit.
var ErrNoKeyframe = errors.New("passthrough: no usable keyframe")

// maxBehind is how late a paced file may fall behind its schedule (the
// host was suspended, the disk stalled) before the schedule restarts from
// now instead of bursting to catch up.
const maxBehind = time.Second

// minPTSStep keeps the timestamps of live input growing when access units
// arrive together, far enough apart (90 ticks of the 90 kHz RTP clock)
// that every frame keeps an RTP timestamp of its own.
const minPTSStep = time.Millisecond

// Source publishes an H.264 stream without re-encoding it.
type Source struct {
	opts Options
	name string
	log  *slog.Logger

	// keyReq holds a pending keyframe request (nil without
	// KeyframeCommand); pid is Command's process while it runs.
	keyReq chan struct{}
	pid    atomic.Int32
}

var _ media.Source = (*Source)(nil)

// New checks the options and returns a source.
func New(opts Options) (*Source, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.FPS == 0 {
		opts.FPS = DefaultFPS
	}
	opts.Command = append([]string(nil), opts.Command...)
	opts.KeyframeCommand = append([]string(nil), opts.KeyframeCommand...)
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	name := opts.name()
	s := &Source{opts: opts, name: name, log: log.With("source", name)}
	if len(opts.KeyframeCommand) > 0 {
		s.keyReq = make(chan struct{}, 1)
	}
	return s, nil
}

// Info names the source ("file:PATH", "fifo:PATH" or "command:PROGRAM").
// A passthrough source does not encode: with KeyframeCommand it can ask
// its encoder for a keyframe (SourceInfo.RequestKeyframe), without it
// joining viewers start from the hub's cached group of pictures alone.
func (s *Source) Info() media.SourceInfo {
	info := media.SourceInfo{Name: s.name, ForcesKeyframes: false}
	if s.keyReq != nil {
		info.RequestKeyframe = s.requestKeyframe
	}
	return info
}

// Run publishes the stream's access units until ctx ends (it returns
// ctx.Err()) or the input fails or ends. Errors start with "passthrough:"
// and wrap the cause: io.EOF for an input that ended (a file with NoLoop,
// a pipe whose writer closed it, a command that exited with status 0),
// h264.ErrNotH264 for an input that is not H.264, an *exec.ExitError for a
// command that failed.
func (s *Source) Run(ctx context.Context, pub media.Publisher) error {
	r := &run{src: s, pub: pub}
	if s.keyReq != nil {
		kctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); s.keyframes(kctx) }()
		defer func() { cancel(); <-done }()
	}
	var err error
	switch {
	case s.opts.File != "":
		err = s.runFile(ctx, r)
	case s.opts.FIFO != "":
		err = s.runFIFO(ctx, r)
	default:
		err = s.runCommand(ctx, r)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func (s *Source) runFile(ctx context.Context, r *run) error {
	f, err := os.Open(s.opts.File)
	if err != nil {
		return fmt.Errorf("passthrough: %s: %w", s.name, err)
	}
	defer f.Close()
	r.paced = true
	r.fps = s.opts.FPS
	for {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("passthrough: %s: %w", s.name, err)
		}
		n, err := r.pass(ctx, f)
		if err != io.EOF {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w in %s", ErrNoKeyframe, s.name)
		}
		if s.opts.NoLoop {
			return fmt.Errorf("passthrough: %s: end of file: %w", s.name, io.EOF)
		}
	}
}

func (s *Source) runFIFO(ctx context.Context, r *run) error {
	f, err := openFIFO(ctx, s.opts.FIFO)
	if err != nil {
		return fmt.Errorf("passthrough: %s: %w", s.name, err)
	}
	defer f.Close()
	// Closing the pipe unblocks a read in progress.
	stop := context.AfterFunc(ctx, func() { f.Close() })
	defer stop()
	_, err = r.pass(ctx, f)
	if err == io.EOF {
		return fmt.Errorf("passthrough: %s: writer closed the pipe: %w", s.name, io.EOF)
	}
	return err
}

// run is the state of one Run.
type run struct {
	src    *Source
	pub    media.Publisher
	params h264.ParamSets
	// sps is the SPS last parsed, to tell when the stream changes.
	sps []byte

	paced bool
	fps   float64
	// Paced input: frame idx is due at start + pts, where pts counts
	// frames at fps from ptsBase, the PTS of frame idxBase.
	idx, idxBase int64
	ptsBase      time.Duration
	start        time.Time
	// Live input: PTS is the arrival time since the first frame.
	liveStart time.Time
	lastPTS   time.Duration

	published     int64
	droppedLogged bool
	timer         *time.Timer
}

// pass publishes the access units of one reading of the input, starting at
// its first keyframe, and returns how many it published and why it
// stopped: io.EOF at the end of the input.
func (r *run) pass(ctx context.Context, in io.Reader) (int, error) {
	s := r.src
	sp := h264.NewSplitter(in)
	published := 0
	waitKey := true
	for {
		au, err := sp.Next()
		// The context first: cancelling ends the input too (a command is
		// killed, a pipe closed), so whatever Next saw after it is the
		// cancellation's doing, not the input's, and not worth a word.
		// Cancellation happens before the kill or close it causes, so
		// this holds however the goroutines involved are scheduled.
		if ctx.Err() != nil {
			return published, ctx.Err()
		}
		if err == io.EOF {
			r.logDropped(sp)
			return published, io.EOF
		}
		if err != nil {
			return published, fmt.Errorf("passthrough: %s: %w", s.name, err)
		}
		au = r.params.Complete(au)
		r.checkSPS()
		key := au.Key && au.HasSPS && au.HasPPS
		if waitKey {
			if !key {
				continue
			}
			waitKey = false
		}
		pts, err := r.schedule(ctx)
		if err != nil {
			return published, err
		}
		r.pub.Publish(&media.Frame{Kind: media.Video, Data: au.Data, PTS: pts, Captured: time.Now(), Key: key})
		r.published++
		published++
	}
}

// schedule waits until a paced frame is due and returns the next frame's
// PTS.
func (r *run) schedule(ctx context.Context) (time.Duration, error) {
	now := time.Now()
	if !r.paced {
		if r.published == 0 {
			r.liveStart = now
			return 0, nil
		}
		pts := max(now.Sub(r.liveStart), r.lastPTS+minPTSStep)
		r.lastPTS = pts
		return pts, nil
	}
	pts := r.ptsBase + time.Duration(float64(r.idx-r.idxBase)*float64(time.Second)/r.fps)
	r.idx++
	if r.published == 0 {
		r.start = now.Add(-pts)
		return pts, nil
	}
	wait := r.start.Add(pts).Sub(now)
	if wait < -maxBehind {
		r.start = now.Add(-pts)
		return pts, nil
	}
	if wait <= 0 {
		return pts, nil
	}
	if r.timer == nil {
		r.timer = time.NewTimer(wait)
	} else {
		r.timer.Reset(wait)
	}
	select {
	case <-ctx.Done():
		r.timer.Stop()
		return 0, ctx.Err()
	case <-r.timer.C:
		return pts, nil
	}
}

// checkSPS logs the stream's parameters when its SPS first shows up or
// changes, and takes a paced file's frame rate from it.
func (r *run) checkSPS() {
	sps := r.params.SPS()
	if sps == nil || bytes.Equal(sps, r.sps) {
		return
	}
	r.sps = sps
	log := r.src.log
	info, err := h264.ParseSPS(sps)
	if err != nil {
		log.Warn("passthrough: cannot read the stream's SPS", "err", err)
		return
	}
	log.Info("passthrough: stream", "width", info.Width, "height", info.Height,
		"profile", info.ProfileName(), "level", float64(info.Level)/10, "fps", info.FPS)
	if !r.paced {
		return
	}
	fps := r.src.opts.FPS
	switch {
	case info.FPS >= 1 && info.FPS <= 120:
		fps = info.FPS
	case info.FPS != 0:
		log.Warn("passthrough: frame rate in SPS out of range; using FPS", "sps_fps", info.FPS, "fps", fps)
	}
	r.setFPS(fps)
}

// setFPS changes the pacing rate from the next frame on.
func (r *run) setFPS(fps float64) {
	if fps == r.fps {
		return
	}
	r.ptsBase += time.Duration(float64(r.idx-r.idxBase) * float64(time.Second) / r.fps)
	r.idxBase = r.idx
	r.fps = fps
}

// logDropped logs, once per run, that the input ended in the middle of an
// access unit, which was dropped. A cancelled run never calls it: the
// input it was reading did not end, it was stopped.
func (r *run) logDropped(sp *h264.Splitter) {
	n := sp.Stats().DroppedTail
	if n == 0 || r.droppedLogged {
		return
	}
	r.droppedLogged = true
	r.src.log.Info("passthrough: final access unit dropped: the input ended and it may be incomplete", "bytes", n)
}
