package onvif

import (
	"cmp"
	"net"
	"strconv"
)

// The tokens of camd's one media profile and its parts.
const (
	profileToken       = "main"
	videoSourceToken   = "video"
	videoSourceCfToken = "video_source"
	videoEncoderToken  = "h264"
)

func (s *Server) getProfiles(c *call, w *writer) error {
	w.open("trt:GetProfilesResponse")
	s.profile(w, "trt:Profiles")
	w.close("trt:GetProfilesResponse")
	return nil
}

func (s *Server) getProfile(c *call, w *writer) error {
	if err := checkProfile(c); err != nil {
		return err
	}
	w.open("trt:GetProfileResponse")
	s.profile(w, "trt:Profile")
	w.close("trt:GetProfileResponse")
	return nil
}

// checkProfile refuses a ProfileToken other than camd's.
func checkProfile(c *call) error {
	if t := c.req.Action.text("ProfileToken"); t != profileToken {
		return invalidArg("ter:NoProfile", "no profile "+strconv.Quote(t)+"; camd's one profile is "+strconv.Quote(profileToken))
	}
	return nil
}

func (s *Server) profile(w *writer, tag string) {
	w.open(tag, "token", profileToken, "fixed", "true").elem("tt:Name", "camd")
	s.videoSourceConfiguration(w, "tt:VideoSourceConfiguration")
	s.videoEncoderConfiguration(w, "tt:VideoEncoderConfiguration")
	w.close(tag)
}

func (s *Server) videoSourceConfiguration(w *writer, tag string) {
	v := s.o.Video()
	w.open(tag, "token", videoSourceCfToken).elem("tt:Name", "video").elem("tt:UseCount", "1").
		elem("tt:SourceToken", videoSourceToken).
		empty("tt:Bounds", "x", "0", "y", "0", "width", strconv.Itoa(v.Width), "height", strconv.Itoa(v.Height)).
		close(tag)
}

func (s *Server) videoEncoderConfiguration(w *writer, tag string) {
	v := s.o.Video()
	w.open(tag, "token", videoEncoderToken).elem("tt:Name", "H.264").elem("tt:UseCount", "1").
		elem("tt:Encoding", "H264").
		open("tt:Resolution").elem("tt:Width", strconv.Itoa(v.Width)).elem("tt:Height", strconv.Itoa(v.Height)).close("tt:Resolution").
		elem("tt:Quality", "5").
		open("tt:RateControl").elem("tt:FrameRateLimit", strconv.Itoa(v.FPS)).elem("tt:EncodingInterval", "1").
		elem("tt:BitrateLimit", strconv.Itoa(v.Bitrate/1000)).close("tt:RateControl").
		open("tt:H264").elem("tt:GovLength", strconv.Itoa(2*max(v.FPS, 1))).elem("tt:H264Profile", cmp.Or(v.Profile, "Baseline")).close("tt:H264").
		open("tt:Multicast").open("tt:Address").elem("tt:Type", "IPv4").elem("tt:IPv4Address", "0.0.0.0").close("tt:Address").
		elem("tt:Port", "0").elem("tt:TTL", "1").elem("tt:AutoStart", "false").close("tt:Multicast").
		elem("tt:SessionTimeout", "PT60S").
		close(tag)
}

func (s *Server) getVideoSources(c *call, w *writer) error {
	v := s.o.Video()
	w.open("trt:GetVideoSourcesResponse").open("trt:VideoSources", "token", videoSourceToken).
		elem("tt:Framerate", strconv.Itoa(v.FPS)).
		open("tt:Resolution").elem("tt:Width", strconv.Itoa(v.Width)).elem("tt:Height", strconv.Itoa(v.Height)).close("tt:Resolution").
		close("trt:VideoSources").close("trt:GetVideoSourcesResponse")
	return nil
}

func (s *Server) getVideoSourceConfigurations(c *call, w *writer) error {
	w.open("trt:GetVideoSourceConfigurationsResponse")
	s.videoSourceConfiguration(w, "trt:Configurations")
	w.close("trt:GetVideoSourceConfigurationsResponse")
	return nil
}

func (s *Server) getVideoEncoderConfigurations(c *call, w *writer) error {
	w.open("trt:GetVideoEncoderConfigurationsResponse")
	s.videoEncoderConfiguration(w, "trt:Configurations")
	w.close("trt:GetVideoEncoderConfigurationsResponse")
	return nil
}

// emptyList answers a list camd has none of (audio sources: the
// RTSP stream's audio needs no configuration).
func emptyList(tag string) func(*Server, *call, *writer) error {
	return func(_ *Server, _ *call, w *writer) error {
		w.empty(tag)
		return nil
	}
}

// GetStreamUri: the RTSP URL on the host the client reached camd at,
// without credentials (the client adds the key's). Unicast over RTSP
// (TCP or UDP) only; with RTSP off, a fault that says so.
func (s *Server) getStreamURI(c *call, w *writer) error {
	if err := checkProfile(c); err != nil {
		return err
	}
	setup := c.req.Action.child("StreamSetup")
	if st := setup.text("Stream"); st != "" && st != "RTP-Unicast" {
		return invalidArg("ter:InvalidStreamSetup", "camd streams RTP-Unicast only, not "+strconv.Quote(st))
	}
	switch p := setup.text("Transport", "Protocol"); p {
	case "", "RTSP", "UDP", "TCP":
	default:
		return invalidArg("ter:InvalidStreamSetup", "camd streams over RTSP (TCP or UDP), not "+strconv.Quote(p))
	}
	if s.o.RTSPPort == 0 {
		return &fault{Subcode: []string{"ter:ActionNotSupported", "ter:NoStreaming"}, Reason: "the RTSP server is off (rtsp.listen): camd has no stream URI for ONVIF clients"}
	}
	uri := "rtsp://" + net.JoinHostPort(c.host, strconv.Itoa(s.o.RTSPPort)) + s.o.RTSPPath
	w.open("trt:GetStreamUriResponse").open("trt:MediaUri").elem("tt:Uri", uri).
		elem("tt:InvalidAfterConnect", "false").elem("tt:InvalidAfterReboot", "false").elem("tt:Timeout", "PT0S").
		close("trt:MediaUri").close("trt:GetStreamUriResponse")
	return nil
}

func (s *Server) getSnapshotURI(c *call, w *writer) error {
	if err := checkProfile(c); err != nil {
		return err
	}
	uri := ""
	if s.o.SnapshotURL != nil {
		uri = s.o.SnapshotURL(c.host)
	}
	if uri == "" {
		return &fault{Subcode: []string{"ter:ActionNotSupported", "ter:NoSnapshot"}, Reason: "camd has no snapshot URL"}
	}
	w.open("trt:GetSnapshotUriResponse").open("trt:MediaUri").elem("tt:Uri", uri).
		elem("tt:InvalidAfterConnect", "false").elem("tt:InvalidAfterReboot", "false").elem("tt:Timeout", "PT0S").
		close("trt:MediaUri").close("trt:GetSnapshotUriResponse")
	return nil
}

// SetSynchronizationPoint (media): an NVR asks for a keyframe, to start
// recording or after losing packets. An encoding source makes an IDR; a
// passthrough source is asked with passthrough.keyframe_command, and
// without one cannot be: ter:ActionNotSupported.
func (s *Server) setMediaSynchronizationPoint(c *call, w *writer) error {
	if err := checkProfile(c); err != nil {
		return err
	}
	if s.o.Keyframe == nil || !s.o.Keyframe() {
		return &fault{Subcode: []string{"ter:ActionNotSupported"}, Reason: "the source cannot be asked for a keyframe (passthrough without keyframe_command); its next one comes at its own interval"}
	}
	w.empty("trt:SetSynchronizationPointResponse")
	return nil
}

func (s *Server) getMediaServiceCapabilities(c *call, w *writer) error {
	w.open("trt:GetServiceCapabilitiesResponse")
	mediaCaps(w, "trt:Capabilities")
	w.close("trt:GetServiceCapabilitiesResponse")
	return nil
}
