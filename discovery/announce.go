package discovery

import (
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/camd-project/camd/discovery/wsd"
)

// Options configure an Announcer. Zero values mean defaults where a
// default exists.
type Options struct {
	// Name is the camera's friendly name: the DNS-SD instance name.
	Name string
	// Port is camd's HTTPS port.
	Port int
	// ID is the random device ID; Model and Firmware go in TXT as is.
	ID, Model, Firmware string
	// Status reports the pairing state; nil means unpaired with
	// discriminator 0. Call Refresh when it changes.
	Status func() (paired bool, discriminator uint16)
	// ListenHost is the host part of camd's listen address: it decides
	// the interfaces (see package doc) unless Interfaces is set.
	ListenHost string
	// Interfaces, when set, are the interface names to announce on.
	Interfaces []string
	// ONVIF turns on the WS-Discovery responder.
	ONVIF bool
	// ONVIFPort is the port of camd's ONVIF device service (plain HTTP,
	// DeviceServicePath): the WS-Discovery answer's XAddrs point there and
	// its scopes claim Profile S. 0: no ONVIF service; XAddrs carry the
	// HTTPS address.
	ONVIFPort int
	// WatchInterval is how often interfaces are checked for changes
	// (default 2 s).
	WatchInterval time.Duration
	Logger        *slog.Logger

	interfaces interfaceSource // tests
}

// DefaultName is camd's default friendly name; a camera that keeps it is
// announced as "camd-XXXX" (from its device ID) so that two cameras on one
// LAN do not claim the same DNS-SD instance name.
const DefaultName = "camd"

// Announcer announces the camera until Close.
type Announcer struct {
	o Options

	mu      sync.Mutex
	name    string
	renames int // times the name was found taken on the LAN (since SetName)

	// owned by the run goroutine (and Start before it)
	mdns     *mdnsServer
	mdnsKey  string
	resp     *wsd.Responder
	wsdKey   string
	links    []link
	quiet    string // the reason logged for announcing nothing
	metadata uint32

	// counted guards answered and the responders Answers reads.
	counted   sync.Mutex
	answered  uint64 // by the responders closed
	countMDNS *mdnsServer
	countWSD  *wsd.Responder

	refresh chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

// Start announces on the interfaces chosen (or logs why it announces
// nothing) and keeps the announcement current until Close. The mDNS
// instance name is probed for first (RFC 6762 §8.1): its first
// announcement goes out 0.75–1 s after Start.
func Start(o Options) (*Announcer, error) {
	if o.Port <= 0 || o.Port > 65535 {
		return nil, fmt.Errorf("discovery: port %d", o.Port)
	}
	if o.ID == "" {
		return nil, errors.New("discovery: no device ID")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.WatchInterval <= 0 {
		o.WatchInterval = 2 * time.Second
	}
	if o.interfaces == nil {
		o.interfaces = hostInterfaces
	}
	a := &Announcer{
		o: o, name: o.Name,
		metadata: uint32(time.Now().Unix()),
		refresh:  make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	a.apply()
	if ip, err := netip.ParseAddr(o.ListenHost); o.ListenHost == "localhost" || (err == nil && ip.IsLoopback()) {
		return a, nil // nothing to watch: camd is not on the LAN
	}
	a.wg.Add(1)
	go a.run()
	return a, nil
}

// Refresh re-reads the pairing state and re-announces if it changed.
func (a *Announcer) Refresh() {
	select {
	case a.refresh <- struct{}{}:
	default:
	}
}

// SetName changes the friendly name and re-announces.
func (a *Announcer) SetName(name string) {
	a.mu.Lock()
	a.name, a.renames = name, 0
	a.mu.Unlock()
	a.Refresh()
}

// renamed takes the next instance name after another host won this one
// (the mDNS loop calls it); the responder probes for it, then announces it.
func (a *Announcer) renamed() {
	old := a.instance()
	a.mu.Lock()
	a.renames++
	a.mu.Unlock()
	a.o.Logger.Warn("discovery: another device on the LAN claims the same name; renamed", "name", old, "now", a.instance())
	a.Refresh()
}

// Interfaces lists the interfaces announced on now.
func (a *Announcer) Interfaces() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return ifaceNames(a.links)
}

// Close says goodbye (mDNS records with TTL 0, WS-Discovery Bye), stops
// and waits for its goroutines. It is safe to call twice.
func (a *Announcer) Close() {
	a.once.Do(func() {
		close(a.done)
		a.wg.Wait()
	})
}

func (a *Announcer) run() {
	defer a.wg.Done()
	tick := time.NewTicker(a.o.WatchInterval)
	defer tick.Stop()
	for {
		select {
		case <-a.done:
			a.stop()
			return
		case <-a.refresh:
		case <-tick.C:
		}
		a.apply()
	}
}

// instance is the DNS-SD instance label for the friendly name: at most
// 63 bytes, cut at a character boundary, with " (2)", " (3)"... once the
// name was found taken on the LAN.
func (a *Announcer) instance() string {
	a.mu.Lock()
	name := a.name
	renames := a.renames
	a.mu.Unlock()
	name = strings.Trim(name, ". ")
	if name == "" || name == DefaultName {
		name = DefaultName + "-" + a.shortID()
	}
	suffix := ""
	if renames > 0 {
		suffix = fmt.Sprintf(" (%d)", renames+1) // as Avahi and Bonjour rename
	}
	for len(name)+len(suffix) > maxLabel {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return name + suffix
}

func (a *Announcer) shortID() string {
	id := strings.ToLower(a.o.ID)
	return id[:min(4, len(id))]
}

// hostName is the host the SRV record points at (HostName).
func (a *Announcer) hostName() string { return HostName(a.o.ID) + "." }

// HostName is the mDNS host name camd announces for the device ID id
// ("camd-ab12cd34.local"): derived from the random device ID, never from
// the system host name (which may carry a MAC or a serial on some
// boards). The device's TLS certificate names it.
func HostName(id string) string {
	id = strings.ToLower(id)
	return "camd-" + id[:min(8, len(id))] + ".local"
}

func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `.`, `\.`).Replace(s)
}

func (a *Announcer) info() Info {
	i := Info{Version: ProtocolVersion, API: 1, ID: a.o.ID, Model: a.o.Model, Firmware: a.o.Firmware}
	if a.o.Status != nil {
		i.Paired, i.Discriminator = a.o.Status()
	}
	return i
}

// apply brings the announcement in line with the name, the pairing state
// and the interfaces.
func (a *Announcer) apply() {
	log := a.o.Logger
	links, reason, err := selectLinks(a.o.interfaces, a.o.ListenHost, a.o.Interfaces)
	if err != nil {
		log.Warn("discovery: cannot list interfaces", "err", err)
		return
	}
	a.mu.Lock()
	a.links = links
	a.mu.Unlock()
	if len(links) == 0 {
		if a.mdns != nil || a.resp != nil || a.quiet != reason {
			a.stop()
			log.Info("discovery: not announcing (no mDNS, no WS-Discovery)", "reason", reason)
			a.quiet = reason
		}
		return
	}
	a.quiet = ""
	instance := a.instance()
	txt := a.info().TXT()
	key := instance + "\x00" + strings.Join(txt, "\x00") + "\x00" + linksKey(links)
	if key != a.mdnsKey || a.mdns == nil {
		if err := a.announce(links, instance, txt); err != nil {
			log.Warn("discovery: mDNS announcement failed; will retry", "interfaces", ifaceNames(links), "err", err)
			a.mdnsKey = ""
		} else {
			a.mdnsKey = key
			var ips []string
			for _, l := range links {
				for _, ip := range l.Addrs {
					ips = append(ips, ip.String())
				}
			}
			log.Info("discovery: announcing "+ServiceType, "name", instance, "host", a.hostName(), "port", a.o.Port,
				"interfaces", strings.Join(ifaceNames(links), ","), "addrs", strings.Join(ips, ","), "txt", strings.Join(txt, " "))
		}
	}
	if !a.o.ONVIF {
		return
	}
	wkey := instance + "\x00" + linksKey(links)
	if wkey == a.wsdKey && a.resp != nil {
		return
	}
	if a.resp != nil {
		a.resp.Close()
		a.retire(nil, a.resp)
		a.resp = nil
	}
	a.metadata++
	var ifaces []net.Interface
	for _, l := range links {
		ifaces = append(ifaces, l.Iface)
	}
	r, err := wsd.Listen(wsd.Options{Target: a.target(instance, links, a.metadata), Interfaces: ifaces, Logger: log})
	if err != nil {
		log.Warn("discovery: WS-Discovery responder failed; will retry", "err", err)
		a.wsdKey = ""
		return
	}
	a.resp, a.wsdKey = r, wkey
	a.counted.Lock()
	a.countWSD = r
	a.counted.Unlock()
	log.Info("discovery: answering WS-Discovery probes", "interfaces", strings.Join(ifaceNames(links), ","), "endpoint", wsd.EndpointFor(a.o.ID))
}

// DeviceServicePath is the path of the ONVIF device service (package
// device/onvif serves it) in the XAddrs.
const DeviceServicePath = "/onvif/device_service"

// ONVIFScopes are the scopes camd announces: its type, name and model,
// and Profile S when it serves ONVIF. No hardware identifier goes in a
// scope.
func ONVIFScopes(instance, model string, profileS bool) []string {
	s := []string{
		"onvif://www.onvif.org/type/video_encoder",
		"onvif://www.onvif.org/name/" + url.PathEscape(instance),
	}
	if model != "" {
		s = append(s, "onvif://www.onvif.org/hardware/"+url.PathEscape(model))
	}
	if profileS {
		s = append(s, "onvif://www.onvif.org/type/Network_Video_Transmitter", "onvif://www.onvif.org/Profile/Streaming")
	}
	return s
}

func (a *Announcer) scopes(instance string) []string {
	return ONVIFScopes(instance, a.o.Model, a.o.ONVIFPort != 0)
}

// Scopes are the ONVIF scopes announced now (the name as announced:
// "camd-XXXX" for the default name, renamed after a conflict).
func (a *Announcer) Scopes() []string {
	return a.scopes(a.instance())
}

// target answers for the WS-Discovery responder: XAddrs carry the
// addresses of the interface the probe came in on.
func (a *Announcer) target(instance string, links []link, metadata uint32) func(int, bool) wsd.Target {
	t := wsd.Target{
		Endpoint:        wsd.EndpointFor(a.o.ID),
		Types:           []xml.Name{wsd.NetworkVideoTransmitter, {Space: wsd.NSDevice, Local: "Device"}},
		Scopes:          a.scopes(instance),
		MetadataVersion: metadata,
	}
	port, onvifPort := strconv.Itoa(a.o.Port), strconv.Itoa(a.o.ONVIFPort)
	return func(ifIndex int, v6 bool) wsd.Target {
		t := t
		for _, l := range links {
			if l.Iface.Index != ifIndex {
				continue
			}
			for _, ip := range l.Addrs {
				if ip.Is6() != v6 {
					continue
				}
				host := ip.String()
				if ip.Is6() {
					host = netip.AddrFrom16(ip.As16()).String() // no zone in a URL
				}
				if a.o.ONVIFPort != 0 {
					t.XAddrs = append(t.XAddrs, "http://"+net.JoinHostPort(host, onvifPort)+DeviceServicePath)
				} else {
					t.XAddrs = append(t.XAddrs, "https://"+net.JoinHostPort(host, port)+"/")
				}
				if len(t.XAddrs) == 2 {
					return t
				}
			}
		}
		return t
	}
}

// announce has the mDNS responder (opened on first use) answer for the
// service on links: it probes for a new name (or on a new link) before it
// announces it, and announces other changes at once.
func (a *Announcer) announce(links []link, instance string, txt []string) error {
	if a.mdns == nil {
		s, err := listenMDNS(a.o.Logger, a.renamed)
		if err != nil {
			return err
		}
		a.mdns = s
		a.counted.Lock()
		a.countMDNS = s
		a.counted.Unlock()
	}
	return a.mdns.set(links, service{instance: escapeLabel(instance), host: a.hostName(), port: a.o.Port, txt: txt})
}

// stop says goodbye on every protocol.
func (a *Announcer) stop() {
	if a.mdns != nil {
		a.mdns.close()
		a.retire(a.mdns, nil)
		a.mdns, a.mdnsKey = nil, ""
	}
	if a.resp != nil {
		a.resp.Close()
		a.retire(nil, a.resp)
		a.resp, a.wsdKey = nil, ""
	}
}

// retire keeps the counts of a responder that was closed.
func (a *Announcer) retire(m *mdnsServer, r *wsd.Responder) {
	a.counted.Lock()
	defer a.counted.Unlock()
	if m != nil && a.countMDNS == m {
		a.answered += m.sent.Load()
		a.countMDNS = nil
	}
	if r != nil && a.countWSD == r {
		a.answered += r.Stats().Answered
		a.countWSD = nil
	}
}

// Answers counts what the announcer sent since Start: mDNS responses
// and announcements, and WS-Discovery probe matches.
func (a *Announcer) Answers() uint64 {
	a.counted.Lock()
	defer a.counted.Unlock()
	n := a.answered
	if a.countMDNS != nil {
		n += a.countMDNS.sent.Load()
	}
	if a.countWSD != nil {
		n += a.countWSD.Stats().Answered
	}
	return n
}
