//go:build cgo

package encoder

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/pion/mediadevices/pkg/codec"
	"github.com/pion/mediadevices/pkg/codec/opus"
	"github.com/pion/mediadevices/pkg/io/audio"
	"github.com/pion/mediadevices/pkg/prop"
	"github.com/pion/mediadevices/pkg/wave"
)

// Opus encodes 20 ms blocks of 16-bit PCM at 48 kHz into Opus packets. It
// is not safe for concurrent use.
type Opus struct {
	channels int
	enc      codec.ReadCloser
	pcm      *wave.Int16Interleaved

	closeOnce sync.Once
}

// NewOpus starts an Opus encoder for channels (1 or 2) at bitrate bits per
// second (0 means 32 kbps).
func NewOpus(channels, bitrate int) (*Opus, error) {
	if channels != 1 && channels != 2 {
		return nil, fmt.Errorf("encoder: Opus channels %d must be 1 or 2", channels)
	}
	p, err := opus.NewParams()
	if err != nil {
		return nil, fmt.Errorf("encoder: opus params: %w", err)
	}
	p.BitRate = bitrate
	p.Latency = opus.Latency20ms
	o := &Opus{channels: channels}
	r := audio.ReaderFunc(func() (wave.Audio, func(), error) {
		if o.pcm == nil {
			return nil, func() {}, errors.New("encoder: no samples")
		}
		pcm := o.pcm
		o.pcm = nil
		return pcm, func() {}, nil
	})
	enc, err := p.BuildAudioEncoder(r, prop.Media{Audio: prop.Audio{SampleRate: OpusSampleRate, ChannelCount: channels}})
	if err != nil {
		return nil, fmt.Errorf("encoder: opus: %w", err)
	}
	o.enc = enc
	return o, nil
}

// Encode encodes one 20 ms block: OpusFrame samples per channel,
// interleaved. The packet is a new slice that the caller owns.
func (o *Opus) Encode(pcm []int16) ([]byte, error) {
	if len(pcm) != OpusFrame*o.channels {
		return nil, fmt.Errorf("encoder: Opus block has %d samples, want %d", len(pcm), OpusFrame*o.channels)
	}
	o.pcm = &wave.Int16Interleaved{
		Data: pcm,
		Size: wave.ChunkInfo{Len: OpusFrame, Channels: o.channels, SamplingRate: OpusSampleRate},
	}
	pkt, release, err := o.enc.Read()
	o.pcm = nil
	if err != nil {
		return nil, fmt.Errorf("encoder: opus: %w", err)
	}
	// The packet sits in a 1 KiB buffer: keep only what it needs.
	pkt = bytes.Clone(pkt)
	release()
	return pkt, nil
}

// Close frees the encoder. It is safe to call twice.
func (o *Opus) Close() error {
	var err error
	o.closeOnce.Do(func() { err = o.enc.Close() })
	return err
}
