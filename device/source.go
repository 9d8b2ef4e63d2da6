package device

import (
	"context"
	"log/slog"

	"github.com/camd-project/camd/board"
	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/capture"
	"github.com/camd-project/camd/media/encoder"
	"github.com/camd-project/camd/media/passthrough"
	"github.com/camd-project/camd/media/synthetic"
)

// newSource builds the media source the configuration names.
func newSource(cfg Config, mic media.MicFunc, log *slog.Logger) (media.Source, error) {
	// G.711 µ-law rides on each audio frame for RTSP clients without
	// Opus, and for a call's phone without it (a board that takes calls).
	g711 := cfg.RTSP.Listen != "" || takesCalls(cfg.Board)
	v := cfg.Video
	h264 := encoder.H264Options{
		Width: v.Width, Height: v.Height, FPS: v.FPS,
		Bitrate: v.Bitrate, MinBitrate: v.MinBitrate, MaxBitrate: v.MaxBitrate,
		KeyframeInterval: v.KeyframeInterval,
	}
	switch cfg.Source {
	case "none":
		return noSource{}, nil
	case "capture":
		return capture.New(capture.Options{
			Device: cfg.Capture.Device, Microphone: cfg.Capture.Microphone,
			Video: h264, NoAudio: !cfg.Audio.Enabled, G711: g711, Mic: mic, Logger: log,
		})
	case "passthrough":
		p := cfg.Passthrough
		return passthrough.New(passthrough.Options{
			File: p.File, NoLoop: !p.Loop, FIFO: p.FIFO, Command: p.Command,
			FPS: float64(p.FPS), KeyframeCommand: p.KeyframeCommand, Logger: log,
		})
	default:
		return synthetic.New(synthetic.Options{
			Video:   h264,
			ToneHz:  cfg.Audio.ToneHz,
			NoAudio: !cfg.Audio.Enabled,
			G711:    g711,
			Mic:     mic,
			Logger:  log,
		})
	}
}

// takesCalls reports whether the board named rings calls on a speaker:
// the simulated board, or a profile with a doorbell or a speaker.
func takesCalls(name string) bool {
	if name == "sim" {
		return true
	}
	p, err := board.LoadProfile(name)
	return err == nil && (p.Doorbell != nil || p.Speaker != nil)
}

// noSource is the camera of an NVR with no lens (source: none): it
// publishes nothing until it is stopped.
type noSource struct{}

func (noSource) Info() media.SourceInfo { return media.SourceInfo{Name: "none"} }

func (noSource) Run(ctx context.Context, _ media.Publisher) error {
	<-ctx.Done()
	return ctx.Err()
}
