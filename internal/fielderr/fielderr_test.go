package fielderr_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/camd-project/camd/internal/fielderr"
)

var (
	errConfig = errors.New("config")
	errNoPin  = errors.New("board: no such pin")
)

func TestErrorSaysFieldValueAndAllowed(t *testing.T) {
	err := fmt.Errorf("loading camd.yaml: %w", &fielderr.Error{Scope: "config", Field: "video.fps", Value: "500", Allowed: "1 to 60", Kind: errConfig})
	if got, want := err.Error(), "loading camd.yaml: config: video.fps: 500 is not allowed (allowed: 1 to 60)"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
	if !errors.Is(err, errConfig) || errors.Is(err, errNoPin) {
		t.Fatal("errors.Is does not follow the kind")
	}
	fe, ok := fielderr.As(err)
	if !ok || fe.Field != "video.fps" || fe.Value != "500" || fe.Allowed != "1 to 60" {
		t.Fatalf("As: %+v, %v", fe, ok)
	}
}

func TestCauseEndsTheMessageAndIsFound(t *testing.T) {
	err := &fielderr.Error{Scope: "board: profile porch", Field: "pins.ircut", Value: `"GPIO99"`, Allowed: "GPIO1 to GPIO27", Kind: errConfig, Err: errNoPin}
	if got, want := err.Error(), `board: profile porch: pins.ircut: "GPIO99" is not allowed (allowed: GPIO1 to GPIO27): board: no such pin`; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
	if !errors.Is(err, errNoPin) || !errors.Is(err, errConfig) {
		t.Fatal("errors.Is misses the kind or the cause")
	}
	if _, ok := fielderr.As(errors.New("other")); ok {
		t.Fatal("As found a field error in a plain error")
	}
}
