package nvr

import (
	"context"
	"fmt"
	"time"
)

// onvifStreamURI asks the ONVIF service at addr for the RTSP address of
// its first media profile.
func onvifStreamURI(ctx context.Context, addr, user, password string, timeout time.Duration) (string, error) {
	return "", fmt.Errorf("%w: ONVIF is not supported yet", ErrBadRequest)
}
