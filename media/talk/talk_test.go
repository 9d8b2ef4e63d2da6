package talk

import (
	"math"
	"sync"
	"testing"

	"github.com/pion/rtp"

	"github.com/camd-project/camd/media/g711"
	"github.com/camd-project/camd/media/tonetest"
)

type fakeSpeaker struct {
	mu  sync.Mutex
	pcm []int16
}

func (f *fakeSpeaker) Play(pcm []int16) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pcm = append(f.pcm, pcm...)
	return nil
}

// pcmuTone returns n 20 ms PCMU packets of a 1 kHz tone from seq.
func pcmuTone(seq uint16, n int) []*rtp.Packet {
	var enc g711.Encoder
	var out []*rtp.Packet
	for i := range n {
		pcm := make([]int16, 960)
		for j := range pcm {
			pcm[j] = int16(12000 * math.Sin(2*math.Pi*1000*float64(i*960+j)/48000))
		}
		out = append(out, &rtp.Packet{Header: rtp.Header{SequenceNumber: seq + uint16(i), Timestamp: uint32(i * 160)}, Payload: enc.Encode(pcm)})
	}
	return out
}
func TestPlaysInOrderAtOnce(t *testing.T) {
	sp := &fakeSpeaker{}
	p := New(sp, Options{})
	for i, pkt := range pcmuTone(65530, 50) { // across the wrap of the sequence number
		p.Packet("audio/PCMU", pkt)
		if got := len(sp.pcm); got != (i+1)*960 {
			t.Fatalf("after packet %d: %d samples played, want %d (in order plays at once)", i, got, (i+1)*960)
		}
	}
	if g := tonetest.Share(sp.pcm[960:], 1000); g < 0.9 {
		t.Fatalf("1 kHz holds %.2f of the power", g)
	}
	if s := p.Stats(); s.Played != 50 || s.Concealed != 0 {
		t.Fatalf("%+v", s)
	}
}

func TestReordersAndConceals(t *testing.T) {
	sp := &fakeSpeaker{}
	p := New(sp, Options{Depth: 3})
	pkts := pcmuTone(100, 10)
	order := []int{0, 2, 1, 3, 5, 6, 7, 8, 9} // 1 late but in time; 4 lost
	for _, i := range order {
		p.Packet("audio/PCMU", pkts[i])
	}
	p.Packet("audio/PCMU", pkts[1]) // a duplicate, after it played
	p.Flush()
	s := p.Stats()
	if s.Played != 9 || s.Concealed != 1 || s.Late != 1 {
		t.Fatalf("%+v, want 9 played, 1 concealed, 1 late", s)
	}
	if len(sp.pcm) != 10*960 {
		t.Fatalf("%d samples, want %d: the lost packet is made up", len(sp.pcm), 10*960)
	}
	// The concealed packet repeats the tone, faded, not silence.
	if g := tonetest.Share(sp.pcm[4*960:5*960], 1000); g < 0.5 {
		t.Fatalf("concealment holds %.2f of its power at 1 kHz", g)
	}
}

func TestBoundedAndRestartsFarAhead(t *testing.T) {
	sp := &fakeSpeaker{}
	p := New(sp, Options{Depth: 3})
	pkts := pcmuTone(0, 3)
	p.Packet("audio/PCMU", pkts[0])
	far := pcmuTone(5000, 1)[0]
	p.Packet("audio/PCMU", far)
	if s := p.Stats(); s.Played != 2 || s.Concealed != 0 {
		t.Fatalf("a jump ahead: %+v, want it played without concealing the gap", s)
	}
	if len(p.held) != 0 {
		t.Fatalf("%d held", len(p.held))
	}
}

func TestVolumeAndALaw(t *testing.T) {
	sp := &fakeSpeaker{}
	p := New(sp, Options{Volume: func() float64 { return 0.5 }})
	for _, pkt := range pcmuTone(0, 10) {
		for i, b := range pkt.Payload {
			pkt.Payload[i] = g711.ALaw(g711.Decode(b))
		}
		p.Packet("audio/PCMA", pkt)
	}
	var sum float64
	for _, x := range sp.pcm[960:] {
		sum += float64(x) * float64(x)
	}
	if r := math.Sqrt(sum / float64(len(sp.pcm)-960)); math.Abs(r-12000/math.Sqrt2/2) > 600 {
		t.Fatalf("rms %.0f at half volume, want about %.0f", r, 12000/math.Sqrt2/2)
	}
}

func TestUnknownCodecRefused(t *testing.T) {
	sp := &fakeSpeaker{}
	p := New(sp, Options{})
	p.Packet("audio/G722", &rtp.Packet{Payload: []byte{1, 2}})
	if s := p.Stats(); s.Refused != 1 || len(sp.pcm) != 0 {
		t.Fatalf("%+v", s)
	}
}
