package passthrough

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/h264/h264test"
)

// countingPub counts what is published.
type countingPub struct{ frames int }

func (p *countingPub) Publish(*media.Frame)    { p.frames++ }
func (p *countingPub) KeyframeRequested() bool { return false }
func (p *countingPub) TargetBitrate() int      { return 0 }

// endingReader returns data and then io.EOF, calling before first: the
// input ends as a killed command's pipe does, after the cancellation.
type endingReader struct {
	data   []byte
	before func()
}

func (r *endingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		if r.before != nil {
			r.before()
		}
		return 0, io.EOF
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestPassEndOfInputAfterCancel makes explicit the order that cancelling a
// command sets off: the context is cancelled, the process group is killed,
// and only then does the pipe reach its end, in the middle of an access
// unit. A cancelled run says nothing of a dropped access unit: it drops
// nothing, it stops. The same input ending by itself reports the drop.
func TestPassEndOfInputAfterCancel(t *testing.T) {
	stream := h264test.Join(
		[]byte{0, 0, 0, 1}, h264test.SPS320x240(),
		[]byte{0, 0, 0, 1}, h264test.PPS320x240(),
		h264test.Slice(true, 0, 1, 2, 3),
		h264test.Slice(false, 0, 4, 5),
		h264test.Slice(false, 0, 6, 7), // the last: incomplete for all the splitter knows
	)
	for _, tt := range []struct {
		name   string
		cancel bool
		want   error
		logged bool
	}{
		{"cancelled, then the input ends", true, context.Canceled, false},
		{"the input ends", false, io.EOF, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			src, err := New(Options{Command: []string{"cat"}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			in := &endingReader{data: stream}
			if tt.cancel {
				in.before = cancel
			}
			pub := &countingPub{}
			r := &run{src: src, pub: pub}
			if _, err := r.pass(ctx, in); !errors.Is(err, tt.want) {
				t.Fatalf("pass = %v, want %v", err, tt.want)
			}
			if pub.frames != 2 {
				t.Errorf("%d frames published, want 2", pub.frames)
			}
			if logged := strings.Contains(logs.String(), "final access unit dropped"); logged != tt.logged {
				t.Errorf("drop logged %v, want %v:\n%s", logged, tt.logged, &logs)
			}
		})
	}
}
