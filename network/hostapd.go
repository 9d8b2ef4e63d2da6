package network

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// HostapdOptions configure the setup mode's access point; zero values
// mean defaults.
type HostapdOptions struct {
	// Interface is the radio (default wlan0).
	Interface string
	// Dir holds the generated configuration (0600: it holds the
	// passphrase), removed when the access point closes. Required.
	Dir string
	// Hostapd is hostapd's command (default ["hostapd"]); the
	// configuration file's path is appended.
	Hostapd []string
	// DHCP is the DHCP server's command for the phone (default dnsmasq,
	// leasing 192.168.4.10–50 on the interface, no DNS).
	DHCP []string
	// Address is the camera's address on the access point's network
	// (default 192.168.4.1/24), set with ip(8).
	Address netip.Prefix
	// Channel is the 2.4 GHz channel (default 6).
	Channel int
	// IP is ip(8) (default ["ip"]; tests add "-n NAMESPACE").
	IP     []string
	Logger *slog.Logger
}

// Hostapd serves the setup mode's access point: hostapd with WPA2-PSK,
// the camera's address on the interface, and a DHCP server for the
// phone. It is the accessPoint of Setup.
type Hostapd struct {
	opts HostapdOptions

	mu    sync.Mutex
	procs []*exec.Cmd
	waits sync.WaitGroup
}

// NewHostapd prepares the access point; nothing runs until Start.
func NewHostapd(opts HostapdOptions) *Hostapd {
	opts.Interface = cmp.Or(opts.Interface, "wlan0")
	if len(opts.Hostapd) == 0 {
		opts.Hostapd = []string{"hostapd"}
	}
	if !opts.Address.IsValid() {
		opts.Address = netip.MustParsePrefix("192.168.4.1/24")
	}
	opts.Channel = cmp.Or(opts.Channel, 6)
	if len(opts.IP) == 0 {
		opts.IP = []string{"ip"}
	}
	if len(opts.DHCP) == 0 {
		base := opts.Address.Masked().Addr().As4()
		lo, hi := base, base
		lo[3], hi[3] = 10, 50
		opts.DHCP = []string{"dnsmasq", "--keep-in-foreground", "--no-resolv", "--port=0",
			"--interface=" + opts.Interface, "--bind-interfaces", "--leasefile-ro",
			fmt.Sprintf("--dhcp-range=%s,%s,10m", netip.AddrFrom4(lo), netip.AddrFrom4(hi))}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Hostapd{opts: opts}
}

// ErrAccessPoint: the access point could not be opened.
var ErrAccessPoint = errors.New("network: access point")

// hostapdConf is hostapd's configuration for ap. The SSID goes as
// ssid2 in hex (any bytes); the passphrase is 8–63 printable characters
// (SetupNetwork's are base32).
func hostapdConf(iface string, channel int, ctrlDir string, ap SetupAP) string {
	return strings.Join([]string{
		"interface=" + iface,
		"driver=nl80211",
		"ctrl_interface=" + ctrlDir,
		"ssid2=" + hexSSID(ap.SSID),
		"hw_mode=g",
		fmt.Sprintf("channel=%d", channel),
		"auth_algs=1",
		"wpa=2",
		"wpa_key_mgmt=WPA-PSK",
		"rsn_pairwise=CCMP",
		"wpa_passphrase=" + ap.Passphrase,
		"ieee80211w=1",
		"",
	}, "\n")
}

// Start writes the configuration, sets the address and starts hostapd
// and the DHCP server.
func (h *Hostapd) Start(ctx context.Context, ap SetupAP) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.procs) > 0 {
		return nil
	}
	if _, err := (Credentials{SSID: ap.SSID, Passphrase: ap.Passphrase}).Check(); err != nil {
		return fmt.Errorf("%w: %w", ErrAccessPoint, err)
	}
	conf := filepath.Join(h.opts.Dir, "hostapd.conf")
	ctrl := filepath.Join(h.opts.Dir, "hostapd")
	if err := os.WriteFile(conf, []byte(hostapdConf(h.opts.Interface, h.opts.Channel, ctrl, ap)), 0o600); err != nil {
		return fmt.Errorf("%w: %v", ErrAccessPoint, err)
	}
	if out, err := h.ip(ctx, "addr", "replace", h.opts.Address.String(), "dev", h.opts.Interface); err != nil {
		os.Remove(conf)
		return fmt.Errorf("%w: ip addr: %v: %s", ErrAccessPoint, err, bytes.TrimSpace(out))
	}
	for _, argv := range [][]string{append(h.opts.Hostapd[:len(h.opts.Hostapd):len(h.opts.Hostapd)], conf), h.opts.DHCP} {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdout, cmd.Stderr = nil, nil
		if err := cmd.Start(); err != nil {
			h.stop()
			os.Remove(conf)
			return fmt.Errorf("%w: %s: %v", ErrAccessPoint, argv[0], err)
		}
		h.procs = append(h.procs, cmd)
		h.waits.Go(func() {
			err := cmd.Wait()
			h.opts.Logger.Info("network: access point process ended", "command", argv[0], "err", err)
		})
	}
	return nil
}

// ip runs ip(8) with args.
func (h *Hostapd) ip(ctx context.Context, args ...string) ([]byte, error) {
	argv := append(h.opts.IP[:len(h.opts.IP):len(h.opts.IP)], args...)
	return exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
}

// stop ends the processes; h.mu is held.
func (h *Hostapd) stop() {
	for _, p := range h.procs {
		p.Process.Kill()
	}
	h.waits.Wait()
	h.procs = nil
}

// Stop ends hostapd and the DHCP server, removes the address and the
// configuration.
func (h *Hostapd) Stop() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.procs) == 0 {
		return nil
	}
	h.stop()
	h.ip(context.Background(), "addr", "del", h.opts.Address.String(), "dev", h.opts.Interface)
	return os.Remove(filepath.Join(h.opts.Dir, "hostapd.conf"))
}

// SimAP is a simulated access point (make run): it only notes what it
// would serve.
type SimAP struct {
	mu      sync.Mutex
	serving *SetupAP
}

// Start notes ap.
func (s *SimAP) Start(_ context.Context, ap SetupAP) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serving = &ap
	return nil
}

// Stop notes the access point closed.
func (s *SimAP) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serving = nil
	return nil
}

// Serving is the access point open, or nil.
func (s *SimAP) Serving() *SetupAP {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.serving
}
