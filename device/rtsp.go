package device

import (
	"log/slog"
	"net"

	"github.com/camd-project/camd/device/connlimit"
	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/rtsp"
)

// RTSP connection caps: fewer than HTTPS's, as every RTSP client is a
// viewer (docs/security.md, "Stream keys").
const (
	rtspMaxConnections           = 64
	rtspMaxConnectionsPerAddress = 16
)

// newRTSP starts the RTSP server of c on the hub, with digest
// authentication by stream keys, or returns nil when c.Listen is empty.
func newRTSP(c RTSPConfig, hub *media.Hub, keys *pairing.Manager, log *slog.Logger) (*rtsp.Server, error) {
	if c.Listen == "" {
		return nil, nil
	}
	return rtsp.New(hub, rtsp.Options{
		Address: c.Listen, RTPPort: c.RTPPort,
		MaxSessions: c.MaxSessions, MaxSessionsPerUser: c.MaxSessionsPerKey,
		Verify: func(user string, proof func(secret string) bool) (string, error) {
			u, err := keys.VerifyKey(user, proof)
			return u.ID, err
		},
		Listen: func(network, address string) (net.Listener, error) {
			l, err := net.Listen(network, address)
			if err != nil {
				return nil, err
			}
			return connlimit.NewListener(l, connlimit.Options{Max: rtspMaxConnections, MaxPerAddress: rtspMaxConnectionsPerAddress, Logger: log}), nil
		},
		Logger: log,
	})
}

// rtspPort is the RTSP server's port, or 0 when it is off.
func rtspPort(s *rtsp.Server) int {
	if s == nil {
		return 0
	}
	if a, ok := s.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// rtspStatsOf is the RTSP server for the stats and sessions routes, or
// nil when it is off (a nil *rtsp.Server in the interface would not be
// nil).
func rtspStatsOf(s *rtsp.Server) interface {
	Stats() rtsp.Stats
	EndSession(id string) error
} {
	if s == nil {
		return nil
	}
	return s
}
