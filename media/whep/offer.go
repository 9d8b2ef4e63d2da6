package whep

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pion/sdp/v3"
)

// Errors for offers camd cannot answer. ErrBadSDP is a syntax error (400);
// the others are offers that parse but ask for something camd cannot do
// (422).
var (
	ErrBadSDP       = errors.New("whep: malformed SDP offer")
	ErrNoVideo      = errors.New("whep: offer has no video m-line")
	ErrNotReceiving = errors.New("whep: offer does not receive video")
	ErrNoCodec      = errors.New("whep: offer has no codec camd can send")
)

// offerInfo is what the server needs to know about a valid offer.
type offerInfo struct {
	audio bool // Opus received
	pcmu  bool // PCMU received (a call's phone without Opus)
	ufrag string
}

// checkOffer validates an SDP offer before pion sees it, so that a viewer
// learns exactly what is wrong.
func checkOffer(raw []byte) (offerInfo, error) {
	if !strings.HasPrefix(string(raw), "v=0") {
		return offerInfo{}, fmt.Errorf("%w: it must start with \"v=0\"", ErrBadSDP)
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(string(raw)); err != nil {
		return offerInfo{}, fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	var info offerInfo
	info.ufrag, _ = d.Attribute("ice-ufrag")
	var video *sdp.MediaDescription
	for _, m := range d.MediaDescriptions {
		if u, ok := m.Attribute("ice-ufrag"); ok && info.ufrag == "" {
			info.ufrag = u
		}
		switch m.MediaName.Media {
		case "video":
			if video == nil {
				video = m
			}
		case "audio":
			if hasCodec(m, "opus", "") && receives(m) {
				info.audio = true
			}
			if hasCodec(m, "pcmu", "") && receives(m) {
				info.pcmu = true
			}
		}
	}
	if video == nil {
		return info, ErrNoVideo
	}
	if !receives(video) {
		return info, ErrNotReceiving
	}
	if !hasCodec(video, "h264", "packetization-mode=1") {
		return info, fmt.Errorf("%w: video offers %s; camd sends H.264 (packetization-mode=1)", ErrNoCodec, strings.Join(codecNames(video), ", "))
	}
	return info, nil
}

func receives(m *sdp.MediaDescription) bool {
	for _, a := range m.Attributes {
		switch a.Key {
		case "sendonly", "inactive":
			return false
		}
	}
	return m.MediaName.Port.Value != 0
}

// rtpmaps returns payload type → encoding name (lower case).
func rtpmaps(m *sdp.MediaDescription) map[string]string {
	pts := make(map[string]string)
	for _, a := range m.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		pt, rest, ok := strings.Cut(a.Value, " ")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(rest, "/")
		pts[pt] = strings.ToLower(name)
	}
	return pts
}

func hasCodec(m *sdp.MediaDescription, name, fmtpNeeds string) bool {
	pts := rtpmaps(m)
	fmtps := make(map[string]string)
	for _, a := range m.Attributes {
		if a.Key == "fmtp" {
			pt, rest, _ := strings.Cut(a.Value, " ")
			fmtps[pt] = rest
		}
	}
	for _, pt := range m.MediaName.Formats {
		if pts[pt] != name {
			continue
		}
		if fmtpNeeds == "" || strings.Contains(fmtps[pt], fmtpNeeds) {
			return true
		}
	}
	return false
}

func codecNames(m *sdp.MediaDescription) []string {
	pts := rtpmaps(m)
	var names []string
	for _, pt := range m.MediaName.Formats {
		n := pts[pt]
		if n == "" {
			n = "payload type " + pt
		}
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return []string{"nothing"}
	}
	return names
}
