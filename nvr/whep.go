package nvr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/camd-project/camd/media/whep"
)

// pullCamd watches a camd camera's live view over WebRTC (its WHEP
// endpoint, the certificate pinned, the NVR's viewer token) and feeds
// what arrives, as it arrives, into f. It returns when ctx ends or the
// session fails; ErrRefused when the camera refuses the token.
func pullCamd(ctx context.Context, addr string, s secret, f *feed, log *slog.Logger) error {
	client := camdClient(s.Fingerprint, nil)
	defer client.CloseIdleConnections()
	_, err := whep.View(ctx, "https://"+addr+"/api/v1/whep", whep.ViewOptions{
		HTTPClient: client,
		Header:     http.Header{"Authorization": {"Bearer " + s.Token}},
		OnVideo:    f.videoAnnexB,
		OnAudio:    func(p []byte, ts uint32) { f.audioFrame(bytes.Clone(p), ts) },
		Logger:     log,
	})
	switch {
	case errors.Is(err, whep.ErrRefused):
		return fmt.Errorf("%w: %w", ErrRefused, err)
	case err != nil && ctx.Err() == nil:
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	return err
}
