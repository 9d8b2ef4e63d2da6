package passthrough_test

import (
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/camd-project/camd/media/passthrough"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, "in.h264", []byte{0, 0, 0, 1})
	tests := []struct {
		name string
		opts passthrough.Options
		want string // "" for valid options
	}{
		{name: "file", opts: passthrough.Options{File: file}},
		{name: "file once at 120 fps", opts: passthrough.Options{File: file, NoLoop: true, FPS: 120}},
		{name: "missing fifo may come later", opts: passthrough.Options{FIFO: filepath.Join(dir, "later")}},
		{name: "command", opts: passthrough.Options{Command: []string{"cat", file}}},
		{name: "nothing", opts: passthrough.Options{}, want: "set one of File, FIFO or Command"},
		{name: "two inputs", opts: passthrough.Options{File: file, Command: []string{"cat"}}, want: "only one"},
		{name: "fps too low", opts: passthrough.Options{File: file, FPS: 0.5}, want: "FPS 0.5 is not between 1 and 120"},
		{name: "fps too high", opts: passthrough.Options{File: file, FPS: 121}, want: "FPS 121"},
		{name: "fps negative", opts: passthrough.Options{File: file, FPS: -30}, want: "FPS -30"},
		{name: "fps NaN", opts: passthrough.Options{File: file, FPS: math.NaN()}, want: "FPS NaN"},
		{name: "NoLoop ignored for live input", opts: passthrough.Options{Command: []string{"cat"}, NoLoop: true}},
		{name: "missing file", opts: passthrough.Options{File: filepath.Join(dir, "nope.h264")}, want: "no such file"},
		{name: "directory as file", opts: passthrough.Options{File: dir}, want: "not a regular file"},
		{name: "regular file as fifo", opts: passthrough.Options{FIFO: file}, want: "not a named pipe"},
		{name: "empty program", opts: passthrough.Options{Command: []string{""}}, want: "empty program name"},
		{name: "unknown program", opts: passthrough.Options{Command: []string{"camd-no-such-encoder"}}, want: "executable file not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			_, newErr := passthrough.New(tt.opts)
			if tt.want == "" {
				if err != nil || newErr != nil {
					t.Fatalf("Validate: %v; New: %v", err, newErr)
				}
				return
			}
			if !errors.Is(err, passthrough.ErrInvalidOptions) || !errors.Is(newErr, passthrough.ErrInvalidOptions) {
				t.Fatalf("Validate: %v; New: %v; want ErrInvalidOptions", err, newErr)
			}
			if !strings.HasPrefix(err.Error(), "passthrough: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate: %q, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestInfo(t *testing.T) {
	file := writeFile(t, "in.h264", []byte{0, 0, 0, 1})
	fifo := filepath.Join(t.TempDir(), "pipe")
	for opts, want := range map[*passthrough.Options]string{
		{File: file}:                          "file:" + file,
		{FIFO: fifo}:                          "fifo:" + fifo,
		{Command: []string{"cat", "-u", "x"}}: "command:cat",
	} {
		info := mustNew(t, *opts).Info()
		if info.Name != want || info.ForcesKeyframes {
			t.Errorf("Info() = %+v, want name %q and no forced keyframes", info, want)
		}
	}
}
