package whep

import (
	"encoding/hex"
	"strings"

	"github.com/pion/webrtc/v4"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/h264"
)

// profile is an H.264 profile as RFC 6184's profile-level-id names it:
// profile_idc, and for Baseline whether the stream is Constrained
// Baseline (constraint_set1_flag). The level is left out: the answer
// keeps the offer's level-asymmetry-allowed.
type profile struct {
	idc         uint8
	constrained bool
}

// constrainedBaseline is what the built-in encoder (openh264) makes, and
// what the answer prefers before a stream has shown its parameter sets.
var constrainedBaseline = profile{idc: 66, constrained: true}

// keyframer is a hub that keeps its newest keyframe (*media.Hub): the
// stream's SPS is in it.
type keyframer interface{ LastKeyframe() *media.Frame }

// streamProfile returns the profile of the stream src carries: from the
// SPS of its newest keyframe, or Constrained Baseline before the first.
func streamProfile(src source) profile {
	k, ok := src.(keyframer)
	if !ok {
		return constrainedBaseline
	}
	f := k.LastKeyframe()
	if f == nil {
		return constrainedBaseline
	}
	for _, n := range h264.NALUs(f.Data) {
		if len(n) == 0 || n[0]&0x1f != 7 {
			continue
		}
		if info, err := h264.ParseSPS(n); err == nil {
			return profile{idc: info.Profile, constrained: info.Profile == 66 && info.Constrained}
		}
	}
	return constrainedBaseline
}

// fmtpProfile reads profile-level-id from an H.264 fmtp line.
func fmtpProfile(fmtp string) (profile, bool) {
	for _, kv := range strings.Split(fmtp, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if !strings.EqualFold(k, "profile-level-id") {
			continue
		}
		b, err := hex.DecodeString(v)
		if err != nil || len(b) != 3 {
			return profile{}, false
		}
		// constraint_set1_flag is the second bit of profile-iop.
		return profile{idc: b[0], constrained: b[0] == 66 && b[1]&0x40 != 0}, true
	}
	return profile{}, false
}

// pickCodec chooses the one format a track sends among those negotiated,
// which are in the offer's order. Video: H.264 with packetization mode 1,
// the first of the stream's profile (want), else the first. Audio: the
// first Opus; with g711 (a call's phone), else the first PCMU.
func pickCodec(cs []webrtc.RTPCodecParameters, kind webrtc.RTPCodecType, want profile, g711 bool) (webrtc.RTPCodecParameters, bool) {
	var found, pcmu []webrtc.RTPCodecParameters
	for _, c := range cs {
		switch {
		case kind == webrtc.RTPCodecTypeVideo && strings.EqualFold(c.MimeType, webrtc.MimeTypeH264) &&
			strings.Contains(c.SDPFmtpLine, "packetization-mode=1"):
			found = append(found, c)
		case kind == webrtc.RTPCodecTypeAudio && strings.EqualFold(c.MimeType, webrtc.MimeTypeOpus):
			found = append(found, c)
		case kind == webrtc.RTPCodecTypeAudio && g711 && strings.EqualFold(c.MimeType, webrtc.MimeTypePCMU):
			pcmu = append(pcmu, c)
		}
	}
	if len(found) == 0 {
		found = pcmu
	}
	if len(found) == 0 {
		return webrtc.RTPCodecParameters{}, false
	}
	if kind == webrtc.RTPCodecTypeVideo {
		for _, c := range found {
			if p, ok := fmtpProfile(c.SDPFmtpLine); ok && p == want {
				return c, true
			}
		}
	}
	return found[0], true
}

// narrowCodecs makes each of the peer connection's senders offer exactly
// the one format it will send, so that the answer names one payload type
// per codec: a client that binds to the first payload type of the answer
// (go2rtc) receives what camd sends.
func narrowCodecs(pc *webrtc.PeerConnection, want profile) error {
	for _, tr := range pc.GetTransceivers() {
		snd := tr.Sender()
		if snd == nil || snd.Track() == nil {
			continue
		}
		kind := snd.Track().Kind()
		t, _ := snd.Track().(*track)
		c, ok := pickCodec(snd.GetParameters().Codecs, kind, want, t != nil && t.g711)
		if !ok {
			return ErrNoCodec
		}
		if err := tr.SetCodecPreferences([]webrtc.RTPCodecParameters{c}); err != nil {
			return err
		}
	}
	return nil
}
