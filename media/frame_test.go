package media

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/pion/rtp/codecs"
)

// TestCutH264MatchesPion: the frame's payloads are the bytes pion's
// H264Payloader makes, for access units with SPS and PPS, 3- and 4-byte
// start codes, delimiters and filler, NAL units that fit and that do not,
// and a buffer without a start code.
func TestCutH264MatchesPion(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	nalu := func(hdr byte, n int) []byte {
		b := []byte{hdr}
		for range n - 1 {
			b = append(b, byte(rng.IntN(255))|1) // no start code inside
		}
		return b
	}
	sc4, sc3 := []byte{0, 0, 0, 1}, []byte{0, 0, 1}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	aus := map[string][]byte{
		"keyframe": cat(sc4, nalu(0x09, 2), sc4, nalu(0x67, 15), sc4, nalu(0x68, 4), sc4, nalu(0x65, 20000)),
		"p-frame":  cat(sc4, nalu(0x41, 9000)),
		"small":    cat(sc3, nalu(0x41, 300)),
		"slices":   cat(sc3, nalu(0x65, 5000), sc4, nalu(0x65, RTPPayloadSize), sc3, nalu(0x65, RTPPayloadSize+1), sc4, nalu(0x0c, 50)),
		"no-code":  nalu(0x41, 700),
		"one-more": cat(sc4, nalu(0x41, 2*(RTPPayloadSize-2)+1)),
	}
	for name, au := range aus {
		want := (&codecs.H264Payloader{}).Payload(RTPPayloadSize, au)
		f := &Frame{Kind: Video, Data: au}
		if f.Packets() != len(want) {
			t.Fatalf("%s: %d payloads, pion makes %d", name, f.Packets(), len(want))
		}
		buf := make([]byte, 0, RTPPayloadSize)
		for i, w := range want {
			if got := f.Payload(i, buf); !bytes.Equal(got, w) {
				t.Fatalf("%s: payload %d differs from pion's (%d vs %d bytes)", name, i, len(got), len(w))
			}
		}
	}
}

// TestPayloadsShareData: a NAL unit that fits and an Opus packet are
// Data's own bytes, and an FU-A fragment is written into the buffer given:
// the frame holds no copy of itself.
func TestPayloadsShareData(t *testing.T) {
	au := append([]byte{0, 0, 0, 1, 0x41}, make([]byte, 500)...)
	f := &Frame{Kind: Video, Data: au}
	if p := f.Payload(0, nil); &p[0] != &au[4] {
		t.Fatal("a NAL unit that fits was copied")
	}
	a := &Frame{Kind: Audio, Data: []byte{1, 2, 3}}
	if a.Packets() != 1 || &a.Payload(0, nil)[0] != &a.Data[0] {
		t.Fatal("an Opus packet was copied")
	}
	big := &Frame{Kind: Video, Data: append([]byte{0, 0, 0, 1, 0x65}, make([]byte, 3000)...)}
	buf := make([]byte, 0, RTPPayloadSize)
	if p := big.Payload(1, buf); &p[0] != &buf[:1][0] {
		t.Fatal("an FU-A fragment was not written into the buffer given")
	}
}
