// Package wpatest is a fake wpa_supplicant for tests: it serves the
// control interface protocol (wpa_supplicant's ctrl_iface, as its
// documentation and ctrl_iface.c give it) on a unix datagram socket, and
// joins simulated access points. Faults are set per command: a slow
// answer, no answer, or a malformed one.
package wpatest

import (
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/camd-project/camd/network"
)

// AP is a simulated access point.
type AP struct {
	SSID     string
	BSSID    string
	Freq     int
	Signal   int
	Security network.Security
	// Passphrase is the WPA2 passphrase or the WPA3 password.
	Passphrase string
	// Address is what DHCP gives a station; "" for no lease.
	Address string
}

type netConf struct {
	ssid        []byte
	keyMgmt     string
	psk, sae    string
	hasPSK      bool
	ieee80211w  string
	scanSSID    bool
	disabled    bool
	tempDisable bool
}

// Supplicant is the fake. Its state is read with its methods.
type Supplicant struct {
	// Path is the control socket (DIR/IFNAME).
	Path string

	mu        sync.Mutex
	conn      *net.UnixConn
	aps       []AP
	nets      map[int]*netConf
	nextID    int
	current   int // -1: none
	address   string
	monitors  map[string]*net.UnixAddr
	delay     map[string]time.Duration
	drop      map[string]bool
	answer    map[string]string
	commands  []string
	saved     int
	noSave    bool
	assocWait time.Duration
	done      chan struct{}
}

// Start serves a fake wpa_supplicant for interface wlan0 in dir with the
// access points aps in range. Close stops it.
func Start(dir string, aps ...AP) (*Supplicant, error) {
	path := filepath.Join(dir, "wlan0")
	os.Remove(path)
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	f := &Supplicant{
		Path: path, conn: c, aps: aps, nets: map[int]*netConf{}, current: -1,
		monitors: map[string]*net.UnixAddr{}, delay: map[string]time.Duration{},
		drop: map[string]bool{}, answer: map[string]string{}, done: make(chan struct{}),
	}
	go f.serve()
	return f, nil
}

// Close stops serving and removes the socket.
func (f *Supplicant) Close() {
	f.conn.Close()
	<-f.done
	os.Remove(f.Path)
}

// SetAPs replaces the access points in range (a network vanishing).
func (f *Supplicant) SetAPs(aps ...AP) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.aps = aps
}

// Deauth has the access point in use drop the association with the IEEE
// 802.11 reason code (3: it left, 6 and 7: it no longer knows the
// station); wpa_supplicant tells of it with CTRL-EVENT-DISCONNECTED.
func (f *Supplicant) Deauth(reason int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.current < 0 {
		return
	}
	ap := f.apFor(f.nets[f.current])
	f.current, f.address = -1, ""
	f.event(3, fmt.Sprintf("CTRL-EVENT-DISCONNECTED bssid=%s reason=%d", ap.BSSID, reason))
}

// Slow delays the answers to verb ("" for every command).
func (f *Supplicant) Slow(verb string, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delay[verb] = d
}

// Drop leaves verb unanswered.
func (f *Supplicant) Drop(verb string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drop[verb] = on
}

// Answer answers verb with text instead of the protocol's answer ("" to
// stop).
func (f *Supplicant) Answer(verb, text string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if text == "" {
		delete(f.answer, verb)
	} else {
		f.answer[verb] = text
	}
}

// NoSave makes SAVE_CONFIG fail, as with update_config=0.
func (f *Supplicant) NoSave() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.noSave = true
}

// AssocDelay is how long associating takes (default none).
func (f *Supplicant) AssocDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.assocWait = d
}

// Commands are the commands received, in order, as sent.
func (f *Supplicant) Commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.commands)
}

// Attached counts the sockets attached for events.
func (f *Supplicant) Attached() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.monitors)
}

// Saves counts the successful SAVE_CONFIGs.
func (f *Supplicant) Saves() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.saved
}

// Current is the SSID associated with ("" for none).
func (f *Supplicant) Current() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.current < 0 {
		return ""
	}
	return string(f.nets[f.current].ssid)
}

// Networks are the configured networks' SSIDs by id.
func (f *Supplicant) Networks() map[int]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[int]string{}
	for id, n := range f.nets {
		m[id] = string(n.ssid)
	}
	return m
}

func (f *Supplicant) serve() {
	defer close(f.done)
	buf := make([]byte, 4096)
	for {
		n, from, err := f.conn.ReadFromUnix(buf)
		if err != nil {
			return
		}
		cmd := string(buf[:n])
		verb, _, _ := strings.Cut(cmd, " ")
		f.mu.Lock()
		f.commands = append(f.commands, cmd)
		delay := max(f.delay[verb], f.delay[""])
		drop := f.drop[verb]
		override, overridden := f.answer[verb]
		var reply string
		if !overridden && !drop {
			reply = f.handle(cmd, from)
		}
		f.mu.Unlock()
		if drop {
			continue
		}
		if overridden {
			reply = override
		}
		if from == nil {
			continue
		}
		send := func() { f.conn.WriteToUnix([]byte(reply), from) }
		if delay > 0 {
			time.AfterFunc(delay, send)
		} else {
			send()
		}
	}
}

// event sends an unsolicited message to every attached monitor; f.mu is
// held.
func (f *Supplicant) event(level int, msg string) {
	for _, m := range f.monitors {
		f.conn.WriteToUnix(fmt.Appendf(nil, "<%d>%s", level, msg), m)
	}
}

// later runs fn with f.mu held after d.
func (f *Supplicant) later(d time.Duration, fn func()) {
	time.AfterFunc(d, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		fn()
	})
}

const (
	ok   = "OK\n"
	fail = "FAIL\n"
)

// handle answers one command; f.mu is held.
func (f *Supplicant) handle(cmd string, from *net.UnixAddr) string {
	verb, args, _ := strings.Cut(cmd, " ")
	switch verb {
	case "PING":
		return "PONG\n"
	case "ATTACH":
		if from == nil {
			return fail
		}
		f.monitors[from.Name] = from
		return ok
	case "DETACH":
		if from == nil || f.monitors[from.Name] == nil {
			return fail
		}
		delete(f.monitors, from.Name)
		return ok
	case "SCAN":
		f.event(2, "CTRL-EVENT-SCAN-STARTED ")
		f.later(time.Millisecond, func() { f.event(2, "CTRL-EVENT-SCAN-RESULTS ") })
		return ok
	case "SCAN_RESULTS":
		var b strings.Builder
		b.WriteString("bssid / frequency / signal level / flags / ssid\n")
		for _, ap := range f.aps {
			fmt.Fprintf(&b, "%s\t%d\t%d\t%s\t%s\n", ap.BSSID, ap.Freq, ap.Signal, flags(ap.Security), network.PrintfEncode(ap.SSID))
		}
		return b.String()
	case "ADD_NETWORK":
		id := f.nextID
		f.nextID++
		f.nets[id] = &netConf{disabled: true, keyMgmt: "WPA-PSK WPA-EAP"}
		return fmt.Sprintf("%d\n", id)
	case "SET_NETWORK":
		return f.setNetwork(args)
	case "SELECT_NETWORK":
		id, n := f.network(args)
		if n == nil {
			return fail
		}
		for other, o := range f.nets {
			o.disabled = other != id
		}
		n.disabled, n.tempDisable = false, false
		if f.current >= 0 && f.current != id {
			f.disconnect(3)
		}
		f.associate(id)
		return ok
	case "ENABLE_NETWORK":
		if args == "all" {
			for _, n := range f.nets {
				n.disabled = false
			}
			return ok
		}
		id, n := f.network(args)
		if n == nil {
			return fail
		}
		n.disabled = false
		if f.current < 0 {
			f.associate(id)
		}
		return ok
	case "DISABLE_NETWORK":
		id, n := f.network(args)
		if n == nil {
			return fail
		}
		n.disabled = true
		if f.current == id {
			f.disconnect(3)
		}
		return ok
	case "REMOVE_NETWORK":
		if args == "all" {
			if f.current >= 0 {
				f.disconnect(3)
			}
			clear(f.nets)
			return ok
		}
		id, n := f.network(args)
		if n == nil {
			return fail
		}
		if f.current == id {
			f.disconnect(3)
		}
		delete(f.nets, id)
		return ok
	case "LIST_NETWORKS":
		var b strings.Builder
		b.WriteString("network id / ssid / bssid / flags\n")
		ids := make([]int, 0, len(f.nets))
		for id := range f.nets {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			n := f.nets[id]
			fl := ""
			if id == f.current {
				fl += "[CURRENT]"
			}
			if n.disabled {
				fl += "[DISABLED]"
			}
			if n.tempDisable {
				fl += "[TEMP-DISABLED]"
			}
			fmt.Fprintf(&b, "%d\t%s\tany\t%s\n", id, network.PrintfEncode(string(n.ssid)), fl)
		}
		return b.String()
	case "STATUS":
		if f.current < 0 {
			return "wpa_state=DISCONNECTED\naddress=02:00:00:00:00:01\nuuid=0b6a9b1c-0000-0000-0000-000000000001\n"
		}
		ap := f.apFor(f.nets[f.current])
		km := "WPA2-PSK"
		switch f.nets[f.current].keyMgmt {
		case "NONE":
			km = "NONE"
		case "SAE":
			km = "SAE"
		}
		s := fmt.Sprintf("bssid=%s\nfreq=%d\nssid=%s\nid=%d\nmode=station\npairwise_cipher=CCMP\ngroup_cipher=CCMP\nkey_mgmt=%s\nwpa_state=COMPLETED\n",
			ap.BSSID, ap.Freq, network.PrintfEncode(ap.SSID), f.current, km)
		if f.address != "" {
			s += "ip_address=" + f.address + "\n"
		}
		return s + "address=02:00:00:00:00:01\nuuid=0b6a9b1c-0000-0000-0000-000000000001\n"
	case "SIGNAL_POLL":
		if f.current < 0 {
			return fail
		}
		ap := f.apFor(f.nets[f.current])
		return fmt.Sprintf("RSSI=%d\nLINKSPEED=65\nNOISE=9999\nFREQUENCY=%d\n", ap.Signal, ap.Freq)
	case "DISCONNECT":
		if f.current >= 0 {
			f.disconnect(3)
		}
		return ok
	case "SAVE_CONFIG":
		if f.noSave {
			return fail
		}
		f.saved++
		return ok
	}
	return "UNKNOWN COMMAND\n"
}

func (f *Supplicant) network(arg string) (int, *netConf) {
	id, err := strconv.Atoi(arg)
	if err != nil {
		return -1, nil
	}
	return id, f.nets[id]
}

func (f *Supplicant) apFor(n *netConf) AP {
	for _, ap := range f.aps {
		if ap.SSID == string(n.ssid) {
			return ap
		}
	}
	return AP{}
}

// disconnect drops the association; f.mu is held.
func (f *Supplicant) disconnect(reason int) {
	ap := f.apFor(f.nets[f.current])
	f.current, f.address = -1, ""
	f.event(3, fmt.Sprintf("CTRL-EVENT-DISCONNECTED bssid=%s reason=%d locally_generated=1", ap.BSSID, reason))
}

// associate tries network id as wpa_supplicant would, after the
// association delay: a scan, then not found, a wrong key or connected,
// and a DHCP lease when the access point gives one; f.mu is held.
func (f *Supplicant) associate(id int) {
	f.later(f.assocWait, func() {
		n := f.nets[id]
		if n == nil || n.disabled || f.current >= 0 {
			return
		}
		f.event(2, "CTRL-EVENT-SCAN-STARTED ")
		f.event(2, "CTRL-EVENT-SCAN-RESULTS ")
		var ap *AP
		for i := range f.aps {
			if f.aps[i].SSID == string(n.ssid) && compatible(f.aps[i].Security, n.keyMgmt) {
				ap = &f.aps[i]
			}
		}
		if ap == nil {
			f.event(3, "CTRL-EVENT-NETWORK-NOT-FOUND")
			return
		}
		key := n.psk
		if n.keyMgmt == "SAE" {
			key = n.sae
		}
		f.event(3, fmt.Sprintf("Trying to associate with %s (SSID='%s' freq=%d MHz)", ap.BSSID, network.PrintfEncode(ap.SSID), ap.Freq))
		if ap.Security != network.Open && key != ap.Passphrase {
			f.event(3, "WPA: 4-Way Handshake failed - pre-shared key may be incorrect")
			f.event(3, fmt.Sprintf("CTRL-EVENT-DISCONNECTED bssid=%s reason=15", ap.BSSID))
			n.tempDisable = true
			f.event(3, fmt.Sprintf("CTRL-EVENT-SSID-TEMP-DISABLED id=%d ssid=\"%s\" auth_failures=1 duration=10 reason=WRONG_KEY", id, network.PrintfEncode(ap.SSID)))
			return
		}
		// The lease comes with the association: a test of "no lease"
		// waits for the timeout, one of a lease never races it.
		f.current, f.address = id, ap.Address
		f.event(3, fmt.Sprintf("CTRL-EVENT-CONNECTED - Connection to %s completed [id=%d id_str=]", ap.BSSID, id))
	})
}

// compatible: a network configured with keyMgmt can join an access
// point with security sec.
func compatible(sec network.Security, keyMgmt string) bool {
	km := strings.Fields(keyMgmt)
	switch sec {
	case network.Open:
		return slices.Contains(km, "NONE")
	case network.PSK:
		return slices.Contains(km, "WPA-PSK")
	case network.SAE:
		return slices.Contains(km, "SAE")
	case network.PSKSAE:
		return slices.Contains(km, "WPA-PSK") || slices.Contains(km, "SAE")
	}
	return false
}

func flags(sec network.Security) string {
	switch sec {
	case network.PSK:
		return "[WPA2-PSK-CCMP][ESS]"
	case network.SAE:
		return "[WPA2-SAE-CCMP][ESS]"
	case network.PSKSAE:
		return "[WPA2-PSK+SAE-CCMP][ESS]"
	case network.EAP:
		return "[WPA2-EAP-CCMP][ESS]"
	case network.WEP:
		return "[WEP][ESS]"
	}
	return "[ESS]"
}

// setNetwork parses SET_NETWORK <id> <name> <value> as wpa_config_set
// does for the variables camd sets; f.mu is held.
func (f *Supplicant) setNetwork(args string) string {
	idText, rest, _ := strings.Cut(args, " ")
	name, value, ok2 := strings.Cut(rest, " ")
	_, n := f.network(idText)
	if n == nil || !ok2 {
		return fail
	}
	switch name {
	case "ssid":
		s, good := parseString(value)
		if !good || len(s) == 0 || len(s) > 32 {
			return fail
		}
		n.ssid = []byte(s)
	case "psk":
		if strings.HasPrefix(value, `"`) {
			s, good := parseString(value)
			if !good || len(s) < 8 || len(s) > 63 {
				return fail
			}
			n.psk, n.hasPSK = s, true
		} else if b, err := hex.DecodeString(value); err != nil || len(b) != 32 {
			return fail
		} else {
			n.psk, n.hasPSK = value, true
		}
	case "sae_password":
		s, good := parseString(value)
		if !good || !strings.HasPrefix(value, `"`) && !strings.HasPrefix(value, `P"`) {
			return fail
		}
		n.sae = s
	case "key_mgmt":
		for _, k := range strings.Fields(value) {
			if !slices.Contains([]string{"NONE", "WPA-PSK", "SAE", "WPA-EAP", "IEEE8021X", "FT-PSK", "WPA-PSK-SHA256"}, k) {
				return fail
			}
		}
		n.keyMgmt = value
	case "ieee80211w":
		if value != "0" && value != "1" && value != "2" {
			return fail
		}
		n.ieee80211w = value
	case "scan_ssid":
		if value != "0" && value != "1" {
			return fail
		}
		n.scanSSID = value == "1"
	default:
		return fail
	}
	return ok
}

// parseString is wpa_config_parse_string: "…" up to the last quote of
// the value, P"…" printf-escaped, or bare hex.
func parseString(v string) (string, bool) {
	switch {
	case strings.HasPrefix(v, `"`):
		end := strings.LastIndexByte(v, '"')
		if end < 1 || end != len(v)-1 {
			return "", false
		}
		s := v[1:end]
		if i := strings.IndexByte(s, 0); i >= 0 {
			s = s[:i]
		}
		return s, true
	case strings.HasPrefix(v, `P"`):
		end := strings.LastIndexByte(v, '"')
		if end < 2 || end != len(v)-1 {
			return "", false
		}
		s, err := network.PrintfDecode(v[2:end])
		return s, err == nil
	default:
		b, err := hex.DecodeString(v)
		return string(b), err == nil
	}
}
