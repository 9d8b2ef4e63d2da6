package nvr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/pion/rtp"
)

// rtspURL is the URL with the user and password put in, as gortsplib
// reads them.
func rtspURL(raw, user, password string) (*base.URL, error) {
	u, err := base.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if user != "" {
		u.User = url.UserPassword(user, password)
	}
	return u, nil
}

// splitRTSP checks an RTSP URL and takes its user and password out of it.
func splitRTSP(raw string) (clean, user, password string, err error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "rtsp" && u.Scheme != "rtsps") || u.Host == "" {
		return "", "", "", fmt.Errorf("%w: %q is not an rtsp:// URL", ErrBadRequest, redactURL(raw))
	}
	if u.User != nil {
		user = u.User.Username()
		password, _ = u.User.Password()
		u.User = nil
	}
	return u.String(), user, password, nil
}

// redactURL is raw without any password, for errors and logs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// rtspError tells what an RTSP failure means for the NVR.
func rtspError(err error) error {
	var bad liberrors.ErrClientBadStatusCode
	switch {
	case err == nil:
		return nil
	case errors.As(err, &bad) && (bad.Code == base.StatusUnauthorized || bad.Code == base.StatusForbidden):
		return fmt.Errorf("%w: %w", ErrRefused, err)
	case errors.Is(err, ErrNoVideo), errors.Is(err, ErrRefused), errors.Is(err, ErrUnreachable):
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnreachable, err)
}

// describe opens an RTSP session and reads the stream's description; the
// caller closes the client. It finds the H.264 video or fails with
// ErrNoVideo (H.265 included: it is not recorded, docs/nvr.md).
func describe(ctx context.Context, u *base.URL, timeout time.Duration, log *slog.Logger) (*gortsplib.Client, *description.Session, *description.Media, *format.H264, error) {
	c := &gortsplib.Client{
		Scheme: u.Scheme, Host: u.Host, ReadTimeout: timeout, WriteTimeout: timeout,
		// gortsplib prints these with the log package unless told.
		OnTransportSwitch: func(err error) { log.Debug("nvr: rtsp transport", "err", err) },
		OnPacketsLost:     func(n uint64) { log.Debug("nvr: rtsp packets lost", "lost", n) },
		OnDecodeError:     func(err error) { log.Debug("nvr: rtsp decode", "err", err) },
	}
	if err := c.Start2(); err != nil {
		return nil, nil, nil, nil, rtspError(err)
	}
	stop := context.AfterFunc(ctx, c.Close)
	desc, _, err := c.Describe(u)
	stop()
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		c.Close()
		return nil, nil, nil, nil, rtspError(err)
	}
	var h264 *format.H264
	medi := desc.FindFormat(&h264)
	if medi == nil {
		c.Close()
		var h265 *format.H265
		if desc.FindFormat(&h265) != nil {
			return nil, nil, nil, nil, fmt.Errorf("%w: the camera sends H.265, which the NVR does not record", ErrNoVideo)
		}
		return nil, nil, nil, nil, ErrNoVideo
	}
	return c, desc, medi, h264, nil
}

// probeRTSP checks, before a camera is added, that its URL answers with
// H.264 to these credentials.
func probeRTSP(ctx context.Context, raw, user, password string, timeout time.Duration, log *slog.Logger) error {
	u, err := rtspURL(raw, user, password)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, _, _, _, err := describe(ctx, u, timeout, log)
	if err != nil {
		return err
	}
	c.Close()
	return nil
}

// pullRTSP plays the camera's H.264 over RTSP (gortsplib picks UDP, then
// TCP) and feeds each access unit into f, the SDP's parameter sets put
// in front of an IDR that lacks them (until the stream carries its own),
// and the camera's Opus audio when it has some (the recording format's;
// other audio, AAC or G.711, is not pulled). It returns when ctx ends or
// the session fails.
func pullRTSP(ctx context.Context, raw string, s secret, f *feed, timeout time.Duration, log *slog.Logger) error {
	u, err := rtspURL(raw, s.User, s.Password)
	if err != nil {
		return err
	}
	c, desc, medi, h264, err := describe(ctx, u, timeout, log)
	if err != nil {
		return err
	}
	defer c.Close()
	dec, err := h264.CreateDecoder()
	if err != nil {
		return fmt.Errorf("nvr: %w", err)
	}
	if _, err := c.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		return rtspError(err)
	}
	var opus *format.Opus
	audio := desc.FindFormat(&opus)
	if audio != nil {
		if _, err := c.Setup(desc.BaseURL, audio, 0, 0); err != nil {
			return rtspError(err)
		}
		c.OnPacketRTP(audio, opus, func(pkt *rtp.Packet) {
			if len(pkt.Payload) > 0 {
				f.audioFrame(pkt.Payload, pkt.Timestamp)
			}
		})
	} else if other := otherAudio(desc); other != "" {
		log.Debug("nvr: the camera's audio is not recorded (Opus only)", "codec", other)
	}
	sps, pps := h264.SafeParams()
	f.mu.Lock()
	f.params = params{sps: sps, pps: pps}
	f.audio = audio != nil
	f.mu.Unlock()
	c.OnPacketRTP(medi, h264, func(pkt *rtp.Packet) {
		nalus, err := dec.Decode(pkt)
		if err != nil {
			if !errors.Is(err, rtph264.ErrMorePacketsNeeded) && !errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious) {
				log.Debug("nvr: rtsp decode", "err", err)
			}
			return
		}
		f.video(nalus, nil, pkt.Timestamp)
	})
	if _, err := c.Play(nil); err != nil {
		return rtspError(err)
	}
	stop := context.AfterFunc(ctx, c.Close)
	defer stop()
	err = c.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return rtspError(err)
}

// otherAudio names the camera's audio when it is not Opus ("" if it has
// none).
func otherAudio(desc *description.Session) string {
	for _, m := range desc.Medias {
		if m.Type == description.MediaTypeAudio && len(m.Formats) > 0 {
			return m.Formats[0].Codec()
		}
	}
	return ""
}
