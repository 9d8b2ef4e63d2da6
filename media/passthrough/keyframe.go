package passthrough

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// keyframeTimeout bounds one run of Options.KeyframeCommand.
const keyframeTimeout = 5 * time.Second

// SourcePIDEnv names the environment variable that gives
// Options.KeyframeCommand the process ID of Options.Command while it runs
// (a signal asks some encoders for an IDR: kill -USR1 $CAMD_SOURCE_PID).
const SourcePIDEnv = "CAMD_SOURCE_PID"

// requestKeyframe asks for a keyframe without blocking: requests that
// come while one is pending or running become one more run.
func (s *Source) requestKeyframe() {
	select {
	case s.keyReq <- struct{}{}:
	default:
	}
}

// keyframes runs KeyframeCommand for each request until ctx ends. A
// failure is a warning when the command worked before (or never ran),
// then debug until it works again, so that a broken command does not
// fill the log with a line per viewer.
func (s *Source) keyframes(ctx context.Context) {
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.keyReq:
		}
		out, err := s.runKeyframeCommand(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			if failing {
				s.log.Info("passthrough: keyframe command works again")
			}
			failing = false
		case !failing:
			failing = true
			s.log.Warn("passthrough: keyframe command failed; viewers start from the cached group of pictures", "err", err, "output", out)
		default:
			s.log.Debug("passthrough: keyframe command failed", "err", err, "output", out)
		}
	}
}

// runKeyframeCommand runs KeyframeCommand once, never through a shell,
// for at most keyframeTimeout; it returns the end of what it printed and
// its error.
func (s *Source) runKeyframeCommand(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, keyframeTimeout)
	defer cancel()
	argv := s.opts.KeyframeCommand
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = os.Environ()
	if pid := s.pid.Load(); pid > 0 {
		cmd.Env = append(cmd.Env, SourcePIDEnv+"="+strconv.Itoa(int(pid)))
	}
	out := &tailWriter{log: s.log}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = waitDelay
	err := cmd.Run()
	out.flush()
	return out.tail(), err
}
