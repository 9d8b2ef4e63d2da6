//go:build !(linux && cgo) || camd_nocapture

package capture

import (
	"context"
	"errors"
	"testing"
)

func TestRunUnavailable(t *testing.T) {
	src, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = src.Run(context.Background(), nil)
	if !errors.Is(err, ErrUnavailable) || err.Error() != "capture: V4L2 capture is not available in this build" {
		t.Fatalf("Run = %v", err)
	}
}
