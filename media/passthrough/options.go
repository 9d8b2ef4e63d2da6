package passthrough

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
)

// ErrInvalidOptions is wrapped by every error of Options.Validate.
var ErrInvalidOptions = errors.New("passthrough: invalid options")

// DefaultFPS paces a file whose SPS carries no frame rate.
const DefaultFPS = 30

// Options choose the input. Exactly one of File, FIFO and Command is set;
// the zero value of every other field means its default.
type Options struct {
	// File is the path of an H.264 Annex-B file. It is played in a loop
	// (unless NoLoop) at the frame rate of its SPS, or FPS; timestamps
	// continue across passes and each pass starts at a keyframe. Each
	// pass drops the file's last access unit, which cannot be known to be
	// complete (the file may have been cut short), unless the file ends
	// with an end of stream NAL unit.
	File string
	// NoLoop plays File once: Run then returns an error wrapping io.EOF.
	// It does not apply to FIFO and Command, which are live: their runs
	// end when their input does.
	NoLoop bool

	// FIFO is the path of a named pipe that an encoder writes into. It is
	// opened at each run, waiting for a writer, and read as fast as it is
	// written. It may be created after Validate.
	FIFO string

	// Command is an argv whose standard output is the stream, such as
	// {"ffmpeg", "-f", "v4l2", "-i", "/dev/video0", "-c:v", "h264_v4l2m2m",
	// "-f", "h264", "-"}. It is started at each run and killed (with its
	// process group) when the run ends; its standard error goes to the
	// log at debug level and its tail into the error when it exits.
	Command []string

	// FPS paces File when its SPS has no frame rate (default 30; 1 to 120).
	FPS float64

	// KeyframeCommand, when set, asks the encoder for a keyframe (an
	// IDR) when a viewer joins or its decoder lost its way: an argv run
	// without a shell, for at most 5 s, with CAMD_SOURCE_PID set to
	// Command's process while it runs; requests that come while one runs
	// become one more run. E.g. {"wget", "-q", "-O", "/dev/null",
	// "http://127.0.0.1/request/idr"} (OpenIPC's majestic) or {"sh",
	// "-c", "kill -USR1 $CAMD_SOURCE_PID"}. Viewers start from the cached
	// group of pictures as without it, and go live from the new keyframe
	// as soon as it comes (media.ConsumerOptions.JumpToLive).
	KeyframeCommand []string

	// Logger receives the source's messages (default: none).
	Logger *slog.Logger
}

// Validate reports what is wrong with the options.
func (o Options) Validate() error {
	n := 0
	for _, set := range []bool{o.File != "", o.FIFO != "", len(o.Command) > 0} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return fmt.Errorf("%w: set one of File, FIFO or Command", ErrInvalidOptions)
	case n > 1:
		return fmt.Errorf("%w: set only one of File, FIFO and Command", ErrInvalidOptions)
	}
	if len(o.KeyframeCommand) > 0 {
		if o.KeyframeCommand[0] == "" {
			return fmt.Errorf("%w: KeyframeCommand has an empty program name", ErrInvalidOptions)
		}
		if _, err := exec.LookPath(o.KeyframeCommand[0]); err != nil {
			return fmt.Errorf("%w: KeyframeCommand: %w", ErrInvalidOptions, err)
		}
	}
	if o.FPS != 0 && (math.IsNaN(o.FPS) || o.FPS < 1 || o.FPS > 120) {
		return fmt.Errorf("%w: FPS %v is not between 1 and 120", ErrInvalidOptions, o.FPS)
	}
	switch {
	case o.File != "":
		st, err := os.Stat(o.File)
		if err != nil {
			return fmt.Errorf("%w: File: %w", ErrInvalidOptions, err)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%w: File %s is not a regular file (use FIFO for a named pipe)", ErrInvalidOptions, o.File)
		}
	case o.FIFO != "":
		st, err := os.Stat(o.FIFO)
		if err == nil && st.Mode()&os.ModeNamedPipe == 0 {
			return fmt.Errorf("%w: FIFO %s is not a named pipe", ErrInvalidOptions, o.FIFO)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: FIFO: %w", ErrInvalidOptions, err)
		}
	default:
		if o.Command[0] == "" {
			return fmt.Errorf("%w: Command has an empty program name", ErrInvalidOptions)
		}
		if _, err := exec.LookPath(o.Command[0]); err != nil {
			return fmt.Errorf("%w: Command: %w", ErrInvalidOptions, err)
		}
	}
	return nil
}

// name identifies the input in logs: "file:PATH", "fifo:PATH" or
// "command:PROGRAM".
func (o Options) name() string {
	switch {
	case o.File != "":
		return "file:" + o.File
	case o.FIFO != "":
		return "fifo:" + o.FIFO
	case len(o.Command) > 0:
		return "command:" + o.Command[0]
	}
	return "passthrough"
}
