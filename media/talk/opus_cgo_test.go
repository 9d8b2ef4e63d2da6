//go:build cgo && linux && (amd64 || arm64 || arm)

package talk

import (
	"math"
	"testing"

	"github.com/pion/rtp"

	"github.com/camd-project/camd/media/encoder"
	"github.com/camd-project/camd/media/tonetest"
)

// TestOpusPlaysAndConceals: a 1 kHz tone in Opus (camd's own encoder)
// comes out at 1 kHz; a lost packet is made up by libopus.
func TestOpusPlaysAndConceals(t *testing.T) {
	enc, err := encoder.NewOpus(1, 32000)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	sp := &fakeSpeaker{}
	p := New(sp, Options{Depth: 2})
	for i := range 50 {
		pcm := make([]int16, 960)
		for j := range pcm {
			pcm[j] = int16(12000 * math.Sin(2*math.Pi*1000*float64(i*960+j)/48000))
		}
		pkt, err := enc.Encode(pcm)
		if err != nil {
			t.Fatal(err)
		}
		if i == 30 {
			continue // lost
		}
		p.Packet("audio/opus", &rtp.Packet{Header: rtp.Header{SequenceNumber: uint16(i)}, Payload: pkt})
	}
	p.Flush()
	if s := p.Stats(); s.Played != 49 || s.Concealed != 1 {
		t.Fatalf("%+v", s)
	}
	if len(sp.pcm) != 50*960 {
		t.Fatalf("%d samples", len(sp.pcm))
	}
	if g := tonetest.Share(sp.pcm[10*960:], 1000); g < 0.8 {
		t.Fatalf("1 kHz holds %.2f of the power", g)
	}
}
