package network

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// SupplicantOptions configure a Supplicant; zero values mean defaults.
type SupplicantOptions struct {
	// Socket is the interface's control socket, required
	// (/var/run/wpa_supplicant/wlan0 with ctrl_interface=/var/run/wpa_supplicant).
	Socket string
	// ClientDir is where camd binds its own two sockets, which
	// wpa_supplicant answers to (default os.TempDir()).
	ClientDir string
	// CommandTimeout bounds one command's answer (default 5 s).
	CommandTimeout time.Duration
	// ScanTimeout bounds waiting for a scan's results (default 15 s).
	ScanTimeout time.Duration
	// JoinTimeout bounds associating with a new network (default 30 s).
	JoinTimeout time.Duration
	// LeaseTimeout bounds getting an address once associated (default 20 s).
	LeaseTimeout time.Duration
	// Keepalive is how often the attached socket is checked with a PING
	// when no event came (default 10 s): after wpa_supplicant restarts,
	// camd attaches again.
	Keepalive time.Duration
	// Lease waits for the interface's DHCP lease once associated (a
	// command such as udhcpc -n -q); nil: wait for STATUS to report an
	// ip_address (the system's DHCP client, hooked on the link, gets it).
	Lease func(ctx context.Context) error
	// Events receives EventDisconnected when the camera loses its
	// network without camd asking (nil: none); joins and forgetting
	// tell of nothing here (Setup does).
	Events func(Event)
	Logger *slog.Logger
}

// Supplicant is a Link that drives wpa_supplicant over its control
// socket: one socket for commands, one attached for events.
type Supplicant struct {
	opts SupplicantOptions
	log  *slog.Logger

	cmdMu sync.Mutex
	cmd   *ctrlConn // nil after a failure: reopened at the next command
	seq   atomic.Uint64

	monMu   sync.Mutex
	mon     *ctrlConn // the attached socket; replaced by listen
	closing bool

	subMu sync.Mutex
	subs  map[chan event]struct{}

	joinMu sync.Mutex // one join or forget at a time
	// up: associated as far as the events tell (true at start: unknown,
	// so the first disconnection is checked); lost checks a
	// disconnection's cause.
	up        atomic.Bool
	lost      sync.WaitGroup
	stop      chan struct{} // closed by Close
	done      chan struct{} // closed when listen returns
	closeOnce sync.Once
}

var _ Link = (*Supplicant)(nil)

// OpenSupplicant connects to wpa_supplicant's control socket and attaches
// for its events. Close releases both sockets.
func OpenSupplicant(opts SupplicantOptions) (*Supplicant, error) {
	if opts.Socket == "" {
		return nil, fmt.Errorf("%w: no control socket", ErrSupplicant)
	}
	if opts.ClientDir == "" {
		opts.ClientDir = os.TempDir()
	}
	opts.CommandTimeout = cmp.Or(opts.CommandTimeout, 5*time.Second)
	opts.ScanTimeout = cmp.Or(opts.ScanTimeout, 15*time.Second)
	opts.JoinTimeout = cmp.Or(opts.JoinTimeout, 30*time.Second)
	opts.LeaseTimeout = cmp.Or(opts.LeaseTimeout, 20*time.Second)
	opts.Keepalive = cmp.Or(opts.Keepalive, 10*time.Second)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Supplicant{opts: opts, log: opts.Logger, subs: map[chan event]struct{}{}, stop: make(chan struct{}), done: make(chan struct{})}
	mon, err := s.attach()
	if err != nil {
		return nil, err
	}
	s.mon = mon
	s.up.Store(true)
	go s.listen()
	return s, nil
}

// attach opens a socket and attaches it for events.
func (s *Supplicant) attach() (*ctrlConn, error) {
	mon, err := s.dial()
	if err != nil {
		return nil, err
	}
	if reply, err := roundTrip(mon, "ATTACH", s.opts.CommandTimeout); err != nil || reply != "OK\n" {
		mon.Close()
		return nil, fmt.Errorf("%w: ATTACH: %v%s", ErrSupplicant, err, short(reply))
	}
	return mon, nil
}

// Close detaches and closes the sockets; it is safe twice.
func (s *Supplicant) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.monMu.Lock()
		s.closing = true
		s.mon.SetWriteDeadline(time.Now().Add(s.opts.CommandTimeout))
		s.mon.Write([]byte("DETACH"))
		s.mon.Close()
		s.monMu.Unlock()
		<-s.done
		s.lost.Wait()
		s.cmdMu.Lock()
		if s.cmd != nil {
			s.cmd.Close()
			s.cmd = nil
		}
		s.cmdMu.Unlock()
	})
	return nil
}

// ctrlConn is a socket of ours connected to wpa_supplicant's; its path,
// which wpa_supplicant answers to, is removed when it closes.
type ctrlConn struct {
	*net.UnixConn
	path string
}

func (c *ctrlConn) Close() error {
	err := c.UnixConn.Close()
	os.Remove(c.path)
	return err
}

// dial binds a socket of ours and connects it to wpa_supplicant's.
func (s *Supplicant) dial() (*ctrlConn, error) {
	local := filepath.Join(s.opts.ClientDir, fmt.Sprintf("camd-wpa-%d-%d", os.Getpid(), s.seq.Add(1)))
	os.Remove(local)
	c, err := net.DialUnix("unixgram", &net.UnixAddr{Name: local, Net: "unixgram"}, &net.UnixAddr{Name: s.opts.Socket, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSupplicant, err)
	}
	return &ctrlConn{c, local}, nil
}

// errNotSent: a command could not be sent (wpa_supplicant's socket is
// gone), so it can be sent again on a new socket.
var errNotSent = errors.New("network: not sent")

// roundTrip sends one command and reads its answer, skipping event
// messages ("<N>…").
func roundTrip(c *ctrlConn, cmd string, timeout time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte(cmd)); err != nil {
		return "", fmt.Errorf("%w: %w", errNotSent, err)
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return "", err
		}
		if n > 0 && buf[0] == '<' {
			continue
		}
		return string(buf[:n]), nil
	}
}

// short quotes the start of an answer for an error message.
func short(reply string) string {
	if reply == "" {
		return ""
	}
	return fmt.Sprintf(" (answered %.40q)", reply)
}

// request sends cmd and returns the answer. Its errors name the
// command's verb alone: a SET_NETWORK's value (a passphrase) never
// reaches an error or a log.
func (s *Supplicant) request(ctx context.Context, cmd string) (string, error) {
	verb := cmd
	if f := strings.Fields(cmd); len(f) > 0 {
		verb = f[0]
		if verb == "SET_NETWORK" && len(f) > 2 {
			verb += " " + f[2]
		}
	}
	s.cmdMu.Lock()
	defer s.cmdMu.Unlock()
	select {
	case <-s.done:
		return "", ErrClosed
	default:
	}
	timeout := s.opts.CommandTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	var reply string
	var err error
	// A socket of ours from before wpa_supplicant restarted cannot send:
	// the command goes again, once, on a new one.
	for fresh := false; !fresh; {
		if s.cmd == nil {
			c, err := s.dial()
			if err != nil {
				return "", err
			}
			s.cmd, fresh = c, true
		}
		reply, err = roundTrip(s.cmd, cmd, timeout)
		if err == nil || !errors.Is(err, errNotSent) {
			break
		}
		s.cmd.Close()
		s.cmd = nil
	}
	if err != nil {
		// A late answer must not be read as the next command's: start
		// over on a new socket.
		if s.cmd != nil {
			s.cmd.Close()
			s.cmd = nil
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "", fmt.Errorf("%w: %s: no answer within %v", ErrSupplicant, verb, timeout)
		}
		return "", fmt.Errorf("%w: %s: %v", ErrSupplicant, verb, err)
	}
	if strings.HasPrefix(reply, "FAIL") || strings.HasPrefix(reply, "UNKNOWN COMMAND") {
		return reply, fmt.Errorf("%w: %s: %s", ErrSupplicant, verb, strings.TrimSpace(reply))
	}
	return reply, nil
}

// ok sends a command whose answer is OK.
func (s *Supplicant) ok(ctx context.Context, cmd string) error {
	reply, err := s.request(ctx, cmd)
	if err != nil {
		return err
	}
	if reply != "OK\n" {
		verb, _, _ := strings.Cut(cmd, " ")
		return fmt.Errorf("%w: %s%s", ErrSupplicant, verb, short(reply))
	}
	return nil
}

// listen reads the attached socket's events and hands them to the
// subscribers, dropping for one that does not keep up. When no event
// came for a keepalive interval it sends PING (as wpa_cli does); a PING
// that cannot be sent means wpa_supplicant went away, and listen
// attaches again, to the one that replaced it.
func (s *Supplicant) listen() {
	defer close(s.done)
	buf := make([]byte, 8<<10)
	s.monMu.Lock()
	mon := s.mon
	s.monMu.Unlock()
	for {
		mon.SetReadDeadline(time.Now().Add(s.opts.Keepalive))
		n, err := mon.Read(buf)
		if err != nil {
			s.monMu.Lock()
			closing := s.closing
			s.monMu.Unlock()
			if closing {
				return
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				// not a quiet socket but a broken one: pause, then attach again
				t := time.NewTimer(s.opts.Keepalive)
				select {
				case <-t.C:
				case <-s.stop:
					t.Stop()
					return
				}
			} else if _, err := mon.Write([]byte("PING")); err == nil {
				continue
			}
			fresh, err := s.attach()
			if err != nil {
				s.log.Debug("network: wpa_supplicant: cannot attach again", "err", err)
				continue // the next keepalive tries again
			}
			s.monMu.Lock()
			if s.closing {
				s.monMu.Unlock()
				fresh.Close()
				return
			}
			mon.Close()
			s.mon, mon = fresh, fresh
			s.monMu.Unlock()
			s.log.Info("network: wpa_supplicant came back; attached again")
			continue
		}
		ev, err := parseEvent(string(buf[:n]))
		if err != nil {
			continue // an answer to DETACH or PING, or noise
		}
		switch ev.Name {
		case "CTRL-EVENT-CONNECTED":
			s.up.Store(true)
		case "CTRL-EVENT-DISCONNECTED":
			if s.up.Swap(false) && s.opts.Events != nil {
				s.lost.Go(func() { s.disconnected(ev) })
			}
		}
		s.subMu.Lock()
		for ch := range s.subs {
			select {
			case ch <- ev:
			default:
			}
		}
		s.subMu.Unlock()
	}
}

func (s *Supplicant) subscribe() (<-chan event, func()) {
	ch := make(chan event, 64)
	s.subMu.Lock()
	s.subs[ch] = struct{}{}
	s.subMu.Unlock()
	return ch, func() {
		s.subMu.Lock()
		delete(s.subs, ch)
		s.subMu.Unlock()
	}
}

// Scan asks for a scan, waits for its results and lists them: the
// strongest BSS of each SSID, strongest first; hidden networks left out.
func (s *Supplicant) Scan(ctx context.Context) ([]Network, error) {
	events, stop := s.subscribe()
	defer stop()
	if reply, err := s.request(ctx, "SCAN"); err != nil && !strings.HasPrefix(reply, "FAIL-BUSY") {
		return nil, err
	}
	timer := time.NewTimer(s.opts.ScanTimeout)
	defer timer.Stop()
wait:
	for {
		select {
		case ev := <-events:
			if ev.Name == "CTRL-EVENT-SCAN-RESULTS" {
				break wait
			}
			if ev.Name == "CTRL-EVENT-SCAN-FAILED" {
				return nil, fmt.Errorf("%w: scan failed (ret=%s)", ErrSupplicant, ev.Fields["ret"])
			}
		case <-timer.C:
			break wait // list what there is
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.done:
			return nil, ErrClosed
		}
	}
	reply, err := s.request(ctx, "SCAN_RESULTS")
	if err != nil {
		return nil, err
	}
	all, err := parseScanResults(reply)
	if err != nil {
		return nil, err
	}
	return strongest(all), nil
}

// strongest keeps the strongest BSS of each SSID, strongest first, and
// leaves hidden networks out.
func strongest(all []Network) []Network {
	best := map[string]Network{}
	for _, n := range all {
		if b, seen := best[n.SSID]; n.SSID != "" && (!seen || n.Signal > b.Signal) {
			best[n.SSID] = n
		}
	}
	list := slices.Collect(func(yield func(Network) bool) {
		for _, n := range best {
			if !yield(n) {
				return
			}
		}
	})
	slices.SortFunc(list, func(a, b Network) int {
		return cmp.Or(cmp.Compare(b.Signal, a.Signal), strings.Compare(a.SSID, b.SSID))
	})
	return list
}

// saved is one network of LIST_NETWORKS.
type saved struct {
	ID       int
	SSID     string
	Current  bool
	Disabled bool
}

// parseNetworks reads LIST_NETWORKS: a header, then id, ssid, bssid,
// flags per line, tab-separated.
func parseNetworks(text string) ([]saved, error) {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if !strings.HasPrefix(lines[0], "network id / ssid / bssid / flags") {
		return nil, fmt.Errorf("%w: LIST_NETWORKS: no header: %.40q", ErrSupplicant, lines[0])
	}
	var list []saved
	for _, line := range lines[1:] {
		f := strings.Split(line, "\t")
		id, err := strconv.Atoi(f[0])
		if len(f) != 4 || err != nil || id < 0 {
			return nil, fmt.Errorf("%w: LIST_NETWORKS: %.80q", ErrSupplicant, line)
		}
		ssid, err := PrintfDecode(f[1])
		if err != nil {
			return nil, err
		}
		list = append(list, saved{ID: id, SSID: ssid, Current: strings.Contains(f[3], "[CURRENT]"), Disabled: strings.Contains(f[3], "[DISABLED]")})
	}
	return list, nil
}

func (s *Supplicant) networks(ctx context.Context) ([]saved, error) {
	reply, err := s.request(ctx, "LIST_NETWORKS")
	if err != nil {
		return nil, err
	}
	return parseNetworks(reply)
}

// Status reads STATUS, SIGNAL_POLL when connected, and whether a network
// is saved.
func (s *Supplicant) Status(ctx context.Context) (Status, error) {
	reply, err := s.request(ctx, "STATUS")
	if err != nil {
		return Status{}, err
	}
	kv, err := parseKeyValues(reply)
	if err != nil {
		return Status{}, err
	}
	list, err := s.networks(ctx)
	if err != nil {
		return Status{}, err
	}
	st := statusOf(kv)
	st.Saved = len(list) > 0
	if st.State == Connecting && !st.Saved {
		st.State = Disconnected // scanning for nothing
	}
	if st.State == Connected {
		if reply, err := s.request(ctx, "SIGNAL_POLL"); err == nil {
			if sig, err := parseKeyValues(reply); err == nil {
				st.Signal, _ = strconv.Atoi(sig["RSSI"])
			}
		}
	}
	return st, nil
}

// statusOf reads STATUS's fields.
func statusOf(kv map[string]string) Status {
	var st Status
	switch kv["wpa_state"] {
	case "COMPLETED":
		st.State = Connected
	case "SCANNING", "AUTHENTICATING", "ASSOCIATING", "ASSOCIATED", "4WAY_HANDSHAKE", "GROUP_HANDSHAKE":
		st.State = Connecting
	default: // DISCONNECTED, INACTIVE, INTERFACE_DISABLED
		st.State = Disconnected
	}
	if kv["mode"] == "AP" && st.State == Connected {
		st.State = AccessPoint
	}
	if st.State != Disconnected {
		st.SSID, _ = PrintfDecode(kv["ssid"])
		st.BSSID = kv["bssid"]
		st.Freq, _ = strconv.Atoi(kv["freq"])
		st.Channel = Channel(st.Freq)
		switch km := kv["key_mgmt"]; {
		case strings.Contains(km, "SAE"):
			st.Security = SAE
		case strings.Contains(km, "PSK"):
			st.Security = PSK
		case km == "NONE":
			st.Security = Open
		}
	}
	st.Address = kv["ip_address"]
	return st
}

// Join adds c's network, selects it (which disables the others) and
// waits for the outcome. On success the other networks are removed and
// the configuration saved; on failure the new network is removed and the
// old ones enabled again, the one in use selected.
func (s *Supplicant) Join(ctx context.Context, c Credentials) (Status, error) {
	c, err := c.Check()
	if err != nil {
		return Status{}, err
	}
	s.joinMu.Lock()
	defer s.joinMu.Unlock()
	before, err := s.networks(ctx)
	if err != nil {
		return Status{}, err
	}
	reply, err := s.request(ctx, "ADD_NETWORK")
	if err != nil {
		return Status{}, err
	}
	id, err := strconv.Atoi(strings.TrimSpace(reply))
	if err != nil || id < 0 {
		return Status{}, fmt.Errorf("%w: ADD_NETWORK%s", ErrSupplicant, short(reply))
	}
	s.log.Debug("network: wpa_supplicant: trying", "wifi", c, "id", id)
	if err := s.tryJoin(ctx, id, c); err != nil {
		s.log.Debug("network: wpa_supplicant: going back", "wifi", c, "why", err)
		s.restore(id, before)
		return Status{}, err
	}
	for _, n := range before {
		if err := s.ok(ctx, fmt.Sprintf("REMOVE_NETWORK %d", n.ID)); err != nil {
			s.log.Warn("network: could not remove the old network", "id", n.ID, "err", err)
		}
	}
	if err := s.ok(ctx, "SAVE_CONFIG"); err != nil {
		s.log.Warn("network: joined but not saved (is update_config=1 in wpa_supplicant.conf?)", "err", err)
	}
	return s.Status(ctx)
}

// setNetwork is the SET_NETWORK commands of c: the SSID as hex (any
// bytes), strings quoted.
func setNetwork(id int, c Credentials) []string {
	set := func(k, v string) string { return fmt.Sprintf("SET_NETWORK %d %s %s", id, k, v) }
	cmds := []string{set("ssid", hexSSID(c.SSID))}
	if c.Hidden {
		cmds = append(cmds, set("scan_ssid", "1"))
	}
	switch c.Security {
	case Open:
		cmds = append(cmds, set("key_mgmt", "NONE"))
	case PSK:
		cmds = append(cmds, set("key_mgmt", "WPA-PSK"), set("psk", quoted(c.Passphrase)))
	case SAE:
		cmds = append(cmds, set("key_mgmt", "SAE"), set("ieee80211w", "2"), set("sae_password", quoted(c.Passphrase)))
	case PSKSAE:
		cmds = append(cmds, set("key_mgmt", "WPA-PSK SAE"), set("ieee80211w", "1"), set("psk", quoted(c.Passphrase)))
	}
	return cmds
}

func (s *Supplicant) tryJoin(ctx context.Context, id int, c Credentials) error {
	for _, cmd := range setNetwork(id, c) {
		if err := s.ok(ctx, cmd); err != nil {
			return err
		}
	}
	events, stop := s.subscribe()
	defer stop()
	if err := s.ok(ctx, fmt.Sprintf("SELECT_NETWORK %d", id)); err != nil {
		return err
	}
	joinCtx, cancel := context.WithTimeout(ctx, s.opts.JoinTimeout)
	defer cancel()
	for connected := false; !connected; {
		select {
		case ev := <-events:
			switch ev.Name {
			case "CTRL-EVENT-CONNECTED":
				connected = ev.id() == id || ev.id() < 0
			case "CTRL-EVENT-SSID-TEMP-DISABLED":
				if ev.id() != id {
					continue
				}
				if ev.Fields["reason"] == "WRONG_KEY" {
					return ErrWrongKey
				}
				return fmt.Errorf("%w (%s)", ErrRejected, ev.Fields["reason"])
			case "CTRL-EVENT-NETWORK-NOT-FOUND":
				return ErrNotFound
			}
		case <-joinCtx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return ErrTimeout
		case <-s.done:
			return ErrClosed
		}
	}
	leaseCtx, cancelLease := context.WithTimeout(ctx, s.opts.LeaseTimeout)
	defer cancelLease()
	if s.opts.Lease != nil {
		if err := s.opts.Lease(leaseCtx); err != nil {
			return fmt.Errorf("%w: %v", ErrNoLease, err)
		}
		return nil
	}
	return s.waitAddress(leaseCtx)
}

// waitAddress waits for STATUS to report an IPv4 address.
func (s *Supplicant) waitAddress(ctx context.Context) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if reply, err := s.request(ctx, "STATUS"); err == nil {
			if kv, err := parseKeyValues(reply); err == nil && kv["ip_address"] != "" && kv["wpa_state"] == "COMPLETED" {
				return nil
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ErrNoLease
		}
	}
}

// restore removes the network that failed and enables the old ones, the
// one in use selected. It runs even when the join's context ended.
func (s *Supplicant) restore(id int, before []saved) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*s.opts.CommandTimeout)
	defer cancel()
	if err := s.ok(ctx, fmt.Sprintf("REMOVE_NETWORK %d", id)); err != nil {
		s.log.Warn("network: could not remove the failed network", "id", id, "err", err)
	}
	for _, n := range before {
		if n.Current {
			if err := s.ok(ctx, fmt.Sprintf("SELECT_NETWORK %d", n.ID)); err != nil {
				s.log.Warn("network: could not select the old network", "id", n.ID, "err", err)
			}
		}
	}
	for _, n := range before {
		if !n.Current && !n.Disabled {
			if err := s.ok(ctx, fmt.Sprintf("ENABLE_NETWORK %d", n.ID)); err != nil {
				s.log.Warn("network: could not enable the old network", "id", n.ID, "err", err)
			}
		}
	}
}

// disconnected tells of a disconnection camd did not cause: none while
// a join or forget of camd's runs (their own), none when the link is
// connected again or no network is saved (forgotten).
func (s *Supplicant) disconnected(ev event) {
	if !s.joinMu.TryLock() {
		return
	}
	defer s.joinMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*s.opts.CommandTimeout)
	defer cancel()
	st, err := s.Status(ctx)
	if err != nil || st.State == Connected {
		return
	}
	saved, err := s.networks(ctx)
	if err != nil || len(saved) == 0 {
		return
	}
	s.log.Info("network: disconnected", "ssid", saved[0].SSID, "bssid", ev.Fields["bssid"], "reason", ev.Fields["reason"])
	s.opts.Events(Event{Kind: EventDisconnected, SSID: saved[0].SSID, Reason: ev.Fields["reason"]})
}

// Forget disconnects, removes every network and saves.
func (s *Supplicant) Forget(ctx context.Context) error {
	s.joinMu.Lock()
	defer s.joinMu.Unlock()
	if err := s.ok(ctx, "DISCONNECT"); err != nil {
		return err
	}
	if err := s.ok(ctx, "REMOVE_NETWORK all"); err != nil {
		return err
	}
	if err := s.ok(ctx, "SAVE_CONFIG"); err != nil {
		s.log.Warn("network: forgotten but not saved (is update_config=1 in wpa_supplicant.conf?)", "err", err)
	}
	return nil
}
