//go:build !(linux && cgo) || camd_nocapture

package capture

import (
	"context"

	"github.com/camd-project/camd/media"
)

// Run returns ErrUnavailable: this build has no V4L2 capture.
func (s *Source) Run(ctx context.Context, pub media.Publisher) error {
	return ErrUnavailable
}

// openALSA returns ErrUnavailable; Run never gets as far as calling it.
func (s *Source) openALSA(string) (*mic, error) { return nil, ErrUnavailable }
