package onvif

import (
	"crypto/sha256"
	"encoding/xml"
	"net"
	"strconv"
	"strings"
	"time"
)

// actions are the requests camd answers, by the body element's name.
var actions = map[xml.Name]handler{
	{Space: nsDevice, Local: "GetSystemDateAndTime"}:   {preAuth: true, answer: (*Server).getSystemDateAndTime},
	{Space: nsDevice, Local: "GetCapabilities"}:        {preAuth: true, answer: (*Server).getCapabilities},
	{Space: nsDevice, Local: "GetServices"}:            {preAuth: true, answer: (*Server).getServices},
	{Space: nsDevice, Local: "GetServiceCapabilities"}: {preAuth: true, answer: (*Server).getDeviceServiceCapabilities},
	{Space: nsDevice, Local: "GetDeviceInformation"}:   {answer: (*Server).getDeviceInformation},
	{Space: nsDevice, Local: "GetScopes"}:              {answer: (*Server).getScopes},
	{Space: nsDevice, Local: "GetNetworkInterfaces"}:   {answer: (*Server).getNetworkInterfaces},
	{Space: nsDevice, Local: "GetHostname"}:            {preAuth: true, answer: (*Server).getHostname},

	{Space: nsMedia, Local: "GetProfiles"}:                     {answer: (*Server).getProfiles},
	{Space: nsMedia, Local: "GetProfile"}:                      {answer: (*Server).getProfile},
	{Space: nsMedia, Local: "GetVideoSources"}:                 {answer: (*Server).getVideoSources},
	{Space: nsMedia, Local: "GetVideoEncoderConfigurations"}:   {answer: (*Server).getVideoEncoderConfigurations},
	{Space: nsMedia, Local: "GetStreamUri"}:                    {answer: (*Server).getStreamURI},
	{Space: nsMedia, Local: "GetSnapshotUri"}:                  {answer: (*Server).getSnapshotURI},
	{Space: nsMedia, Local: "GetServiceCapabilities"}:          {answer: (*Server).getMediaServiceCapabilities},
	{Space: nsMedia, Local: "SetSynchronizationPoint"}:         {answer: (*Server).setMediaSynchronizationPoint},
	{Space: nsMedia, Local: "GetVideoSourceConfigurations"}:    {answer: (*Server).getVideoSourceConfigurations},
	{Space: nsMedia, Local: "GetAudioSources"}:                 {answer: emptyList("trt:GetAudioSourcesResponse")},
	{Space: nsMedia, Local: "GetAudioEncoderConfigurations"}:   {answer: emptyList("trt:GetAudioEncoderConfigurationsResponse")},
	{Space: nsMedia, Local: "GetVideoAnalyticsConfigurations"}: {answer: emptyList("trt:GetVideoAnalyticsConfigurationsResponse")},

	{Space: nsEvents, Local: "GetServiceCapabilities"}:      {answer: (*Server).getEventsServiceCapabilities},
	{Space: nsEvents, Local: "CreatePullPointSubscription"}: {answer: (*Server).createPullPoint},
	{Space: nsEvents, Local: "PullMessages"}:                {answer: (*Server).pullMessages},
	{Space: nsEvents, Local: "SetSynchronizationPoint"}:     {answer: (*Server).setSynchronizationPoint},
	{Space: nsEvents, Local: "GetEventProperties"}:          {answer: (*Server).getEventProperties},
	{Space: nsWSNT, Local: "Renew"}:                         {answer: (*Server).renew},
	{Space: nsWSNT, Local: "Unsubscribe"}:                   {answer: (*Server).unsubscribe},
}

// xsdTime is an xs:dateTime in UTC, as ONVIF clients parse it.
func xsdTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func (s *Server) getSystemDateAndTime(c *call, w *writer) error {
	now := s.o.Now().UTC()
	w.open("tds:GetSystemDateAndTimeResponse").open("tds:SystemDateAndTime").
		elem("tt:DateTimeType", "NTP").elem("tt:DaylightSavings", "false").
		open("tt:TimeZone").elem("tt:TZ", "UTC0").close("tt:TimeZone")
	for _, tag := range []string{"tt:UTCDateTime", "tt:LocalDateTime"} {
		w.open(tag).open("tt:Time").
			elem("tt:Hour", strconv.Itoa(now.Hour())).elem("tt:Minute", strconv.Itoa(now.Minute())).elem("tt:Second", strconv.Itoa(now.Second())).
			close("tt:Time").open("tt:Date").
			elem("tt:Year", strconv.Itoa(now.Year())).elem("tt:Month", strconv.Itoa(int(now.Month()))).elem("tt:Day", strconv.Itoa(now.Day())).
			close("tt:Date").close(tag)
	}
	w.close("tds:SystemDateAndTime").close("tds:GetSystemDateAndTimeResponse")
	return nil
}

// GetCapabilities: the device, media and (when events are on) events
// services; a category camd has not ("PTZ", "Imaging", "Analytics")
// is ter:NoSuchService, as the spec says.
func (s *Server) getCapabilities(c *call, w *writer) error {
	cats := map[string]bool{}
	for _, n := range c.req.Action.Children {
		if n.Name.Local == "Category" {
			cats[strings.TrimSpace(n.Text)] = true
		}
	}
	all := len(cats) == 0 || cats["All"]
	for cat := range cats {
		if cat != "All" && cat != "Device" && cat != "Media" && (cat != "Events" || s.o.Subscribe == nil) {
			return &fault{Subcode: []string{"ter:ActionNotSupported", "ter:NoSuchService"}, Reason: "camd has no " + cat + " service"}
		}
	}
	w.open("tds:GetCapabilitiesResponse").open("tds:Capabilities")
	if all || cats["Device"] {
		w.open("tt:Device").elem("tt:XAddr", c.url(DevicePath)).
			open("tt:Network").elem("tt:IPFilter", "false").elem("tt:ZeroConfiguration", "true").elem("tt:IPVersion6", "true").elem("tt:DynDNS", "false").close("tt:Network").
			open("tt:System").elem("tt:DiscoveryResolve", "true").elem("tt:DiscoveryBye", "true").elem("tt:RemoteDiscovery", "false").
			elem("tt:SystemBackup", "false").elem("tt:SystemLogging", "false").elem("tt:FirmwareUpgrade", "false").
			open("tt:SupportedVersions").elem("tt:Major", "2").elem("tt:Minor", "40").close("tt:SupportedVersions").close("tt:System").
			open("tt:Security").elem("tt:TLS1.1", "false").elem("tt:TLS1.2", "false").elem("tt:OnboardKeyGeneration", "false").
			elem("tt:AccessPolicyConfig", "false").elem("tt:X.509Token", "false").elem("tt:SAMLToken", "false").
			elem("tt:KerberosToken", "false").elem("tt:RELToken", "false").close("tt:Security").
			close("tt:Device")
	}
	if (all || cats["Events"]) && s.o.Subscribe != nil {
		w.open("tt:Events").elem("tt:XAddr", c.url(EventsPath)).elem("tt:WSSubscriptionPolicySupport", "false").
			elem("tt:WSPullPointSupport", "true").elem("tt:WSPausableSubscriptionManagerInterfaceSupport", "false").close("tt:Events")
	}
	if all || cats["Media"] {
		w.open("tt:Media").elem("tt:XAddr", c.url(MediaPath)).
			open("tt:StreamingCapabilities").elem("tt:RTPMulticast", "false").elem("tt:RTP_TCP", "true").elem("tt:RTP_RTSP_TCP", "true").close("tt:StreamingCapabilities").
			close("tt:Media")
	}
	w.close("tds:Capabilities").close("tds:GetCapabilitiesResponse")
	return nil
}

func (s *Server) getServices(c *call, w *writer) error {
	withCaps := c.req.Action.text("IncludeCapability") == "true"
	w.open("tds:GetServicesResponse")
	service := func(ns, path string, caps func()) {
		w.open("tds:Service").elem("tds:Namespace", ns).elem("tds:XAddr", c.url(path))
		if withCaps {
			w.open("tds:Capabilities")
			caps()
			w.close("tds:Capabilities")
		}
		w.open("tds:Version").elem("tt:Major", "2").elem("tt:Minor", "40").close("tds:Version").close("tds:Service")
	}
	service(nsDevice, DevicePath, func() { s.deviceCaps(w, "tds:Capabilities") })
	service(nsMedia, MediaPath, func() { mediaCaps(w, "trt:Capabilities") })
	if s.o.Subscribe != nil {
		service(nsEvents, EventsPath, func() { eventsCaps(w, "tev:Capabilities") })
	}
	w.close("tds:GetServicesResponse")
	return nil
}

func (s *Server) deviceCaps(w *writer, tag string) {
	w.open(tag).
		empty("tds:Network", "ZeroConfiguration", "true", "IPVersion6", "true", "DynDNS", "false", "NTP", "0").
		empty("tds:Security", "TLS1.2", "false", "UsernameToken", "true", "HttpDigest", "false", "DefaultAccessPolicy", "true").
		empty("tds:System", "DiscoveryResolve", "true", "DiscoveryBye", "true", "RemoteDiscovery", "false", "SystemBackup", "false", "FirmwareUpgrade", "false").
		close(tag)
}

func mediaCaps(w *writer, tag string) {
	w.open(tag, "SnapshotUri", "true", "Rotation", "false", "VideoSourceMode", "false", "OSD", "false").
		empty("trt:ProfileCapabilities", "MaximumNumberOfProfiles", "1").
		empty("trt:StreamingCapabilities", "RTPMulticast", "false", "RTP_TCP", "true", "RTP_RTSP_TCP", "true", "NonAggregateControl", "false").
		close(tag)
}

func eventsCaps(w *writer, tag string) {
	w.empty(tag, "WSSubscriptionPolicySupport", "false", "WSPullPointSupport", "true",
		"WSPausableSubscriptionManagerInterfaceSupport", "false", "MaxNotificationProducers", "0", "MaxPullPoints", "16")
}

func (s *Server) getDeviceServiceCapabilities(c *call, w *writer) error {
	w.open("tds:GetServiceCapabilitiesResponse")
	s.deviceCaps(w, "tds:Capabilities")
	w.close("tds:GetServiceCapabilitiesResponse")
	return nil
}

func (s *Server) getDeviceInformation(c *call, w *writer) error {
	d := s.o.Device
	w.open("tds:GetDeviceInformationResponse").
		elem("tds:Manufacturer", d.Manufacturer).elem("tds:Model", d.Model).elem("tds:FirmwareVersion", d.Firmware).
		elem("tds:SerialNumber", d.Serial).elem("tds:HardwareId", d.Model).
		close("tds:GetDeviceInformationResponse")
	return nil
}

func (s *Server) getScopes(c *call, w *writer) error {
	w.open("tds:GetScopesResponse")
	if s.o.Scopes != nil {
		for _, sc := range s.o.Scopes() {
			w.open("tds:Scopes").elem("tt:ScopeDef", "Fixed").elem("tt:ScopeItem", sc).close("tds:Scopes")
		}
	}
	w.close("tds:GetScopesResponse")
	return nil
}

func (s *Server) getHostname(c *call, w *writer) error {
	w.open("tds:GetHostnameResponse").open("tds:HostnameInformation").
		elem("tt:FromDHCP", "false").elem("tt:Name", hostname(s.o.Name())).
		close("tds:HostnameInformation").close("tds:GetHostnameResponse")
	return nil
}

// hostname is name as a host name label: letters, digits and hyphens.
func hostname(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	h := strings.Trim(b.String(), "-")
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-")
	}
	if h == "" {
		h = "camd"
	}
	return h
}

// GetNetworkInterfaces lists the interfaces with their IPv4 addresses.
// tt:HwAddress is required by the schema; camd gives a locally
// administered address derived from the device ID and the interface
// name, never the hardware's (docs/onvif.md): stable, unique per camera,
// and it identifies nothing beyond what the device ID already does.
func (s *Server) getNetworkInterfaces(c *call, w *writer) error {
	w.open("tds:GetNetworkInterfacesResponse")
	if s.o.Interfaces != nil {
		for _, in := range s.o.Interfaces() {
			token := in.Name
			w.open("tds:NetworkInterfaces", "token", token).elem("tt:Enabled", "true").
				open("tt:Info").elem("tt:Name", in.Name).elem("tt:HwAddress", s.hwAddress(in.Name)).elem("tt:MTU", "1500").close("tt:Info").
				open("tt:IPv4").elem("tt:Enabled", strconv.FormatBool(len(in.IPv4) > 0)).open("tt:Config")
			for _, a := range in.IPv4 {
				ones, _ := a.Mask.Size()
				w.open("tt:Manual").elem("tt:Address", a.IP.String()).elem("tt:PrefixLength", strconv.Itoa(ones)).close("tt:Manual")
			}
			w.elem("tt:DHCP", "false").close("tt:Config").close("tt:IPv4").close("tds:NetworkInterfaces")
		}
	}
	w.close("tds:GetNetworkInterfacesResponse")
	return nil
}

func (s *Server) hwAddress(name string) string {
	h := sha256.Sum256([]byte("camd onvif hwaddress\x00" + s.o.Device.Serial + "\x00" + name))
	h[0] = h[0]&0xfc | 0x02 // locally administered, unicast
	return net.HardwareAddr(h[:6]).String()
}
