//go:build !cgo

package synthetic

import (
	"context"
	"errors"
	"testing"

	"github.com/camd-project/camd/media/encoder"
)

func TestRunNeedsCgo(t *testing.T) {
	src, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Run(context.Background(), nil); !errors.Is(err, encoder.ErrNoCgo) {
		t.Fatalf("Run = %v, want ErrNoCgo", err)
	}
}
