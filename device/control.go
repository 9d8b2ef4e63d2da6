package device

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/camd-project/camd/device/pairing"
)

// ControlSocket is the unix socket, in the data directory, through which
// `camd qr`, `camd pair-window` and `camd factory-reset` talk to the
// running daemon. Only root and the daemon's own user may use it.
const ControlSocket = "camd.sock"

// ErrNotRunning: Control found no daemon on the data directory.
var ErrNotRunning = errors.New("device: camd is not running")

// listenControl opens the control socket in the data directory.
func listenControl(dataDir string) (net.Listener, error) {
	path := filepath.Join(dataDir, ControlSocket)
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("device: another camd is running on %s", dataDir)
	}
	os.Remove(path) // a stale socket from a killed daemon
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("device: control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("device: control socket: %w", err)
	}
	return peerCheck{l.(*net.UnixListener)}, nil
}

// peerCheck refuses connections from users other than root and the
// daemon's own user, whatever the socket file's mode says.
type peerCheck struct{ *net.UnixListener }

func (p peerCheck) Accept() (net.Conn, error) {
	for {
		c, err := p.UnixListener.AcceptUnix()
		if err != nil {
			return nil, err
		}
		if allowedPeer(c) {
			return c, nil
		}
		c.Close()
	}
}

func allowedPeer(c *net.UnixConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var cred *syscall.Ucred
	raw.Control(func(fd uintptr) {
		cred, err = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	return err == nil && (cred.Uid == 0 || int(cred.Uid) == os.Getuid())
}

// controlHandler answers the control socket: the setup payload (with
// host in it), opening the pairing window, and a factory reset.
func controlHandler(p *pairing.Manager, host netip.AddrPort, reset resetSignal, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /qr", func(w http.ResponseWriter, r *http.Request) {
		// The setup payload carries the secret: it goes only to root on
		// this device, to be shown on its terminal, screen or sticker.
		io.WriteString(w, p.SetupPayload(host).String()+"\n")
	})
	mux.HandleFunc("POST /pair-window", func(w http.ResponseWriter, r *http.Request) {
		if err := p.OpenWindow(); err != nil {
			http.Error(w, err.Error(), http.StatusLocked)
			return
		}
		_, until, _ := p.Window()
		fmt.Fprintf(w, "pairing open until %s\n", until.Format(time.RFC3339))
	})
	mux.HandleFunc("POST /factory-reset", func(w http.ResponseWriter, r *http.Request) {
		log.Warn("camd: factory reset requested through the control socket")
		io.WriteString(w, "factory reset: erasing keys, users, settings, events, snapshots and recordings, then restarting\n")
		reset.request()
	})
	return mux
}

// resetSignal tells Run to stop for a factory reset (the control socket,
// a long press of the pair button).
type resetSignal chan struct{}

func (r resetSignal) request() {
	select {
	case r <- struct{}{}:
	default:
	}
}

// ControlClient talks to a running daemon's control socket.
func ControlClient(dataDir string) *http.Client {
	path := filepath.Join(dataDir, ControlSocket)
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}
}

// Control sends one request to the running daemon and returns its answer.
func Control(dataDir, method, path string) (string, error) {
	req, _ := http.NewRequest(method, "http://camd"+path, nil)
	resp, err := ControlClient(dataDir).Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return "", fmt.Errorf("%w with data directory %s", ErrNotRunning, dataDir)
		}
		if errors.Is(err, syscall.EACCES) {
			return "", fmt.Errorf("only root may use %s", filepath.Join(dataDir, ControlSocket))
		}
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", errors.New(strings.TrimSpace(string(b)))
	}
	return string(b), nil
}
