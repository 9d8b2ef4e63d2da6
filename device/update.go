package device

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"

	"github.com/camd-project/camd/device/settings"
	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/storage/eventlog"
	"github.com/camd-project/camd/update"
)

// updateDir is the updater's directory in the data directory: its state
// and the image being downloaded.
const updateDir = "update"

// openUpdater builds the updater (docs/updates.md) from the
// configuration and the build's keys. Its events go to the event log;
// its health check is the daemon's: frames published, the API
// answering. Checking follows the owner's update_check setting.
func openUpdater(cfg Config, events *eventlog.Log, health *healthCheck, s settings.Settings, log *slog.Logger) (*update.Updater, error) {
	uc := cfg.Update
	keys := uc.keys
	if keys == nil {
		var err error
		if keys, err = update.TrustedKeys(); err != nil {
			return nil, err
		}
	}
	client, err := httpsClient(uc.CAFile, "update.ca_file")
	if err != nil {
		return nil, err
	}
	u, err := update.New(update.Options{
		FeedURL: uc.FeedURL, Keys: keys, Product: uc.Product, Version: Version,
		Dir: filepath.Join(cfg.Data, updateDir), Client: client, Events: events,
		InstallCommand: uc.InstallCommand, MarkGoodCommand: uc.MarkGoodCommand,
		RollbackCommand: uc.RollbackCommand, RebootCommand: uc.RebootCommand,
		ConfirmTimeout: uc.ConfirmTimeout, Healthy: health.check, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	u.SetEnabled(s.UpdateCheck)
	return u, nil
}

// updateSettingChanged turns checking on or off with the owner's
// update_check setting.
func updateSettingChanged(u *update.Updater) func(before, after settings.Settings) {
	return func(before, after settings.Settings) {
		if before.UpdateCheck != after.UpdateCheck {
			u.SetEnabled(after.UpdateCheck)
		}
	}
}

// healthCheck is a new version's health: media flowing (the hub
// published frames since the last check) and the API answering (GET
// /health over the HTTPS port, the device's certificate pinned). An NVR
// with no lens (source: none; hub nil) is checked on the API alone.
type healthCheck struct {
	hub    *media.Hub
	addr   string // the HTTPS port, reachable from the device
	client *http.Client
	frames atomic.Uint64
}

func newHealthCheck(hub *media.Hub, listen net.Addr, cert tls.Certificate) *healthCheck {
	addr := listen.(*net.TCPAddr)
	ip := addr.IP
	if ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
		if addr.IP.To4() == nil {
			ip = net.IPv6loopback
		}
	}
	return &healthCheck{
		hub:  hub,
		addr: net.JoinHostPort(ip.String(), fmt.Sprint(addr.Port)),
		client: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			// The device's certificate names the device, not an address:
			// it is checked against the pinned one alone.
			InsecureSkipVerify: true, VerifyPeerCertificate: pinned(cert),
		}}},
	}
}

// pinned accepts only cert itself.
func pinned(cert tls.Certificate) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 || string(raw[0]) != string(cert.Certificate[0]) {
			return errors.New("device: health check: not the device's certificate")
		}
		return nil
	}
}

// errNoFrames: the source published nothing since the last check.
var errNoFrames = errors.New("device: no frames published")

func (h *healthCheck) check(ctx context.Context) error {
	if h.hub != nil {
		published := h.hub.Stats().Published
		if before := h.frames.Swap(published); published == 0 || published == before {
			return errNoFrames
		}
	}
	req, err := http.NewRequestWithContext(ctx, "GET", "https://"+h.addr+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return fmt.Errorf("device: the API does not answer: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("device: the API answers %s", resp.Status)
	}
	return nil
}
