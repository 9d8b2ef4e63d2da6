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
	// The parsed offer's strings share one block (4 KB): the session
	// keeps a copy of the ufrag, not the block.
	info.ufrag = strings.Clone(info.ufrag)
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

// sentCodecs are the encodings camd's media engines register (lower
// case): what a session can send, or a call's phone talk in.
var sentCodecs = map[string]bool{"h264": true, "opus": true, "pcmu": true, "pcma": true}

// trimOffer removes from an offer's audio and video sections the payload
// types of encodings camd has not registered (VP8, VP9, AV1, RTX, FEC,
// comfort noise...), their rtpmap, fmtp and rtcp-fb lines included.
// pion would ignore them in its answer, but it keeps the offer, its
// parse and each format for the connection's life: a browser's offer
// names 20 to 40 formats, several kilobytes per viewer. The static
// payload types of PCMU (0) and PCMA (8) stay without an rtpmap; a
// section that would be left with no format is left as it is.
func trimOffer(offer string) string {
	lines := slices.Collect(strings.Lines(offer))
	var out []string
	size := 0
	for i := 0; i < len(lines); {
		// A section runs from its m= line (or the start) to the next.
		j := i + 1
		for j < len(lines) && !strings.HasPrefix(lines[j], "m=") {
			j++
		}
		for _, l := range trimSection(lines[i:j]) {
			out = append(out, l)
			size += len(l)
		}
		i = j
	}
	if size == len(offer) {
		return offer
	}
	// Of the exact size: pion keeps the string.
	var b strings.Builder
	b.Grow(size)
	for _, l := range out {
		b.WriteString(l)
	}
	return b.String()
}

// trimSection is trimOffer for one section (its lines, the m= line
// first).
func trimSection(lines []string) []string {
	m := strings.Fields(lines[0])
	if len(m) < 4 || m[0] != "m=audio" && m[0] != "m=video" {
		return lines
	}
	names := make(map[string]string) // payload type → encoding
	for _, l := range lines[1:] {
		if v, ok := strings.CutPrefix(strings.TrimRight(l, "\r\n"), "a=rtpmap:"); ok {
			pt, rest, _ := strings.Cut(v, " ")
			name, _, _ := strings.Cut(rest, "/")
			names[pt] = strings.ToLower(name)
		}
	}
	drop := make(map[string]bool)
	keep := m[:3:3]
	for _, pt := range m[3:] {
		name, mapped := names[pt]
		if sentCodecs[name] || !mapped && (pt == "0" || pt == "8") {
			keep = append(keep, pt)
		} else {
			drop[pt] = true
		}
	}
	if len(drop) == 0 || len(keep) == 3 {
		return lines
	}
	eol := lines[0][len(strings.TrimRight(lines[0], "\r\n")):]
	out := []string{strings.Join(keep, " ") + eol}
	for _, l := range lines[1:] {
		if pt, ok := formatOf(l); ok && drop[pt] {
			continue
		}
		out = append(out, l)
	}
	return out
}

// formatOf returns the payload type an rtpmap, fmtp or rtcp-fb line is
// about.
func formatOf(line string) (string, bool) {
	for _, p := range []string{"a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"} {
		if v, ok := strings.CutPrefix(line, p); ok {
			pt, _, _ := strings.Cut(v, " ")
			return pt, true
		}
	}
	return "", false
}
