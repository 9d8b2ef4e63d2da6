package nvr

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/camd-project/camd/device/onvif"
)

const (
	onvifDeviceNS = "http://www.onvif.org/ver10/device/wsdl"
	onvifMediaNS  = "http://www.onvif.org/ver10/media/wsdl"
	onvifSchemaNS = "http://www.onvif.org/ver10/schema"
)

// onvifCamera is what the NVR learns of an ONVIF camera as it is added.
type onvifCamera struct {
	// URI is the RTSP address of the first media profile; Events the
	// events service's address ("" when the camera has none); Media the
	// media service's and Profile the profile's token, for
	// SetSynchronizationPoint.
	URI, Events, Media, Profile string
}

// onvifStreamURI asks the ONVIF service at addr (HOST:PORT, or a device
// service URL) for the RTSP address of its first media profile:
// GetCapabilities for the media and events services, GetProfiles,
// GetStreamUri (RTP-Unicast over RTSP), each signed with a WS-Security
// UsernameToken digest of user and password.
func onvifStreamURI(ctx context.Context, addr, user, password string, timeout time.Duration) (onvifCamera, error) {
	device := addr
	if !strings.Contains(addr, "://") {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return onvifCamera{}, fmt.Errorf("%w: onvif %q is not HOST:PORT", ErrBadRequest, addr)
		}
		device = "http://" + addr + "/onvif/device_service"
	}
	if u, err := url.Parse(device); err != nil || u.Scheme != "http" && u.Scheme != "https" {
		return onvifCamera{}, fmt.Errorf("%w: onvif %q is not HOST:PORT", ErrBadRequest, addr)
	}
	c := &onvifClient{http: &http.Client{Timeout: timeout}, user: user, password: password}
	defer c.http.CloseIdleConnections()

	var caps struct {
		Media  string `xml:"Body>GetCapabilitiesResponse>Capabilities>Media>XAddr"`
		Events string `xml:"Body>GetCapabilitiesResponse>Capabilities>Events>XAddr"`
	}
	if err := c.call(ctx, device, `<tds:GetCapabilities xmlns:tds="`+onvifDeviceNS+`"><tds:Category>All</tds:Category></tds:GetCapabilities>`, &caps); err != nil {
		return onvifCamera{}, err
	}
	media := strings.TrimSpace(caps.Media)
	if media == "" {
		media = device
	}
	var profiles struct {
		Profiles []struct {
			Token string `xml:"token,attr"`
		} `xml:"Body>GetProfilesResponse>Profiles"`
	}
	if err := c.call(ctx, media, `<trt:GetProfiles xmlns:trt="`+onvifMediaNS+`"/>`, &profiles); err != nil {
		return onvifCamera{}, err
	}
	if len(profiles.Profiles) == 0 {
		return onvifCamera{}, fmt.Errorf("%w: the ONVIF camera has no media profile", ErrNoVideo)
	}
	profile := profiles.Profiles[0].Token
	var ans struct {
		URI string `xml:"Body>GetStreamUriResponse>MediaUri>Uri"`
	}
	req := `<trt:GetStreamUri xmlns:trt="` + onvifMediaNS + `" xmlns:tt="` + onvifSchemaNS + `"><trt:StreamSetup>` +
		`<tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport></trt:StreamSetup>` +
		`<trt:ProfileToken>` + xmlText(profile) + `</trt:ProfileToken></trt:GetStreamUri>`
	if err := c.call(ctx, media, req, &ans); err != nil {
		return onvifCamera{}, err
	}
	if ans.URI == "" {
		return onvifCamera{}, fmt.Errorf("%w: the ONVIF camera gave no stream address", ErrNoVideo)
	}
	return onvifCamera{URI: strings.TrimSpace(ans.URI), Events: strings.TrimSpace(caps.Events), Media: media, Profile: profile}, nil
}

// xmlText escapes s for an XML element's text.
func xmlText(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// onvifSyncPoint asks an ONVIF camera for a keyframe: the media service's
// SetSynchronizationPoint on the profile the NVR records.
func onvifSyncPoint(ctx context.Context, s secret, timeout time.Duration) error {
	c := &onvifClient{http: &http.Client{Timeout: timeout}, user: s.User, password: s.Password}
	defer c.http.CloseIdleConnections()
	var ok struct {
		XMLName xml.Name `xml:"Envelope"`
	}
	return c.call(ctx, s.Media, `<trt:SetSynchronizationPoint xmlns:trt="`+onvifMediaNS+`"><trt:ProfileToken>`+xmlText(s.Profile)+`</trt:ProfileToken></trt:SetSynchronizationPoint>`, &ok)
}

type onvifClient struct {
	http           *http.Client
	user, password string
}

// call posts one SOAP 1.2 action and decodes the answer into out. A
// fault that says NotAuthorized is ErrRefused.
func (c *onvifClient) call(ctx context.Context, endpoint, body string, out any) error {
	header := ""
	if c.user != "" {
		var u bytes.Buffer
		xml.EscapeText(&u, []byte(c.user))
		header = onvif.SecurityHeader(u.String(), c.password, time.Now())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(onvif.Envelope(header, body)))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	req.Header.Set("Content-Type", `application/soap+xml; charset=utf-8`)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: onvif: %w", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var fault struct {
			Subcodes []string `xml:"Body>Fault>Code>Subcode>Value"`
			Reason   string   `xml:"Body>Fault>Reason>Text"`
		}
		xml.Unmarshal(b, &fault)
		if resp.StatusCode == http.StatusUnauthorized || strings.Contains(strings.Join(fault.Subcodes, " "), "NotAuthorized") {
			return fmt.Errorf("%w: onvif: %s", ErrRefused, fault.Reason)
		}
		return fmt.Errorf("%w: onvif: %s: %s", ErrUnreachable, resp.Status, fault.Reason)
	}
	if err := xml.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%w: onvif: the answer: %w", ErrUnreachable, err)
	}
	return nil
}
