package whep

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// ErrNoTalk is a call's offer whose audio does not both send and
// receive, or offers no codec camd can play (Opus, PCMU, PCMA).
var ErrNoTalk = errors.New("whep: a call's offer must send and receive audio (Opus, PCMU or PCMA)")

// Call is a doorbell call's session: a WHEP session of the live stream
// whose audio goes both ways. The phone receives the camera's video and
// microphone as a viewer does, and its own audio goes to Talk; viewers of
// live view never hear it (it is not published into the hub).
type Call struct {
	// ID is the call's (for the log).
	ID string
	// Talk receives each RTP packet of the phone's audio, on the
	// session's reader goroutine, with the codec it was negotiated with
	// (Opus, PCMU or PCMA). Nil: the phone's audio is read and dropped.
	Talk func(codec webrtc.RTPCodecParameters, p *rtp.Packet)
	// Ended is told once why the session ended: the phone hung up
	// ("viewer left"), its connection failed, or it never connected. Nil:
	// not told.
	Ended func(reason string)
}

// talkCodecs are the audio formats a phone may send, by MIME type.
var talkCodecs = []string{webrtc.MimeTypeOpus, webrtc.MimeTypePCMU, webrtc.MimeTypePCMA}

// CheckCallOffer checks a call's offer before the call is claimed: an
// offer WHEP accepts (video received as H.264) whose audio is sendrecv
// with a codec camd plays, and that receives a codec camd sends: Opus,
// or PCMU when the live stream carries G.711 (media.SourceInfo.G711).
// A camera with no microphone (a passthrough stream) sends no audio, so
// any codec camd plays will do; its answer's audio is recvonly. A
// syntax error is ErrBadSDP; the rest is ErrNoTalk or WHEP's errors.
func (s *Server) CheckCallOffer(raw []byte) error {
	info := s.hub.Info()
	return checkCallOffer(raw, info.G711, !info.Audio)
}

func checkCallOffer(raw []byte, g711, micless bool) error {
	if _, err := checkOffer(raw); err != nil {
		return err
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(string(raw)); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Media != "audio" || !receives(m) || !sends(m) {
			continue
		}
		if hasCodec(m, "opus", "") || g711 && hasCodec(m, "pcmu", "") ||
			micless && (hasCodec(m, "pcmu", "") || hasCodec(m, "pcma", "")) {
			return nil
		}
		if hasCodec(m, "pcmu", "") || hasCodec(m, "pcma", "") {
			if g711 {
				return fmt.Errorf("%w: camd sends Opus or PCMU: offer one of them", ErrNoTalk)
			}
			return fmt.Errorf("%w: camd sends Opus: offer it too", ErrNoTalk)
		}
	}
	return ErrNoTalk
}

// sends reports whether the offerer sends on m (sendrecv, or no
// direction: sendrecv by default).
func sends(m *sdp.MediaDescription) bool {
	for _, a := range m.Attributes {
		switch a.Key {
		case "recvonly", "inactive":
			return false
		}
	}
	return m.MediaName.Port.Value != 0
}

// Admits reports whether the user who made r may have one more session
// now (the viewer limits), so that a call is not claimed by a phone that
// would then be refused: errFull or errUserFull, nil when admitted. The
// offer itself takes the slot later, and may still be refused.
func (s *Server) Admits(r *http.Request) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosing
	}
	return s.admitLocked(s.userOf(r))
}

// HandleCallOffer answers a call's offer as HandleOffer answers a
// viewer's (201, the answer, Location: the request path + "/" + the
// session's ID), with audio both ways. It reports whether a session was
// made; HandlePatch and HandleDelete serve it as any session. The
// session counts against the viewer limits.
func (s *Server) HandleCallOffer(w http.ResponseWriter, r *http.Request, c Call) bool {
	return s.handleOffer(w, r, nil, &c) != nil
}

// talkPreferences are the codecs a call's audio transceiver answers
// with: the one camd sends first (Opus), then those the phone may send.
func talkPreferences(cs []webrtc.RTPCodecParameters) []webrtc.RTPCodecParameters {
	var out []webrtc.RTPCodecParameters
	for _, mime := range talkCodecs {
		for _, c := range cs {
			if strings.EqualFold(c.MimeType, mime) {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

// talkTransceiver is the call's audio transceiver: the one that sends
// the camera's audio, or, when camd sends the phone none (a camera with
// no microphone), the receive-only one the offer made.
func talkTransceiver(pc *webrtc.PeerConnection) *webrtc.RTPTransceiver {
	var recvonly *webrtc.RTPTransceiver
	for _, tr := range pc.GetTransceivers() {
		switch {
		case tr.Kind() != webrtc.RTPCodecTypeAudio:
		case tr.Sender() != nil:
			return tr
		case recvonly == nil:
			recvonly = tr
		}
	}
	return recvonly
}

// talkCodecsOf returns the preferences of the call's audio transceiver
// before narrowCodecs leaves it the one codec camd sends.
func talkCodecsOf(pc *webrtc.PeerConnection) []webrtc.RTPCodecParameters {
	tr := talkTransceiver(pc)
	if tr == nil {
		return nil
	}
	if tr.Sender() == nil {
		return talkPreferences(tr.Receiver().GetParameters().Codecs)
	}
	return talkPreferences(tr.Sender().GetParameters().Codecs)
}

// widenTalk lets the call's audio transceiver receive the phone's G.711
// as well as Opus (prefs: talkCodecsOf, taken before narrowCodecs).
func widenTalk(pc *webrtc.PeerConnection, prefs []webrtc.RTPCodecParameters) error {
	tr := talkTransceiver(pc)
	if len(prefs) == 0 || tr == nil {
		return ErrNoTalk
	}
	return tr.SetCodecPreferences(prefs)
}

// readTalk reads the phone's audio until the session ends, handing each
// packet to the call's Talk.
func (s *session) readTalk(t *webrtc.TrackRemote) {
	codec := t.Codec()
	known := slices.ContainsFunc(talkCodecs, func(m string) bool { return strings.EqualFold(m, codec.MimeType) })
	for {
		p, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		if known && s.call.Talk != nil {
			s.call.Talk(codec, p)
		}
	}
}
