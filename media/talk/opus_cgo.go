//go:build cgo && linux && (amd64 || arm64 || arm)

package talk

// libopus comes from pion/mediadevices' bundled static library, which
// media/encoder links already (the blank import below makes sure it is
// linked here too); its decoder's few functions are declared here.

/*
#include <stdlib.h>
typedef struct OpusDecoder OpusDecoder;
extern OpusDecoder *opus_decoder_create(int fs, int channels, int *error);
extern int opus_decode(OpusDecoder *st, const unsigned char *data, int len, short *pcm, int frame_size, int decode_fec);
extern void opus_decoder_destroy(OpusDecoder *st);
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"

	_ "github.com/pion/mediadevices/pkg/codec/opus" // links libopus
)

// maxOpusFrame is the most samples one Opus packet decodes to at 48 kHz
// (120 ms).
const maxOpusFrame = 5760

// opusDecoder decodes mono 48 kHz Opus with libopus, whose packet loss
// concealment makes up lost packets.
type opusDecoder struct {
	st  *C.OpusDecoder
	buf [maxOpusFrame]int16
}

func newOpus() (decoder, error) {
	var cerr C.int
	st := C.opus_decoder_create(48000, 1, &cerr)
	if st == nil || cerr != 0 {
		return nil, fmt.Errorf("talk: opus decoder: error %d", int(cerr))
	}
	d := &opusDecoder{st: st}
	runtime.AddCleanup(d, func(st *C.OpusDecoder) { C.opus_decoder_destroy(st) }, st)
	return d, nil
}

func (d *opusDecoder) decode(dst []int16, payload []byte) ([]int16, error) {
	if len(payload) == 0 {
		return dst, fmt.Errorf("talk: empty opus packet")
	}
	p := C.CBytes(payload)
	defer C.free(p)
	n := C.opus_decode(d.st, (*C.uchar)(p), C.int(len(payload)), (*C.short)(unsafe.Pointer(&d.buf[0])), maxOpusFrame, 0)
	if n < 0 {
		return dst, fmt.Errorf("talk: opus decode: error %d", int(n))
	}
	return append(dst, d.buf[:n]...), nil
}

// conceal asks libopus for n samples of its loss concealment.
func (d *opusDecoder) conceal(dst []int16, n int) []int16 {
	n = min(n, maxOpusFrame)
	got := C.opus_decode(d.st, nil, 0, (*C.short)(unsafe.Pointer(&d.buf[0])), C.int(n), 0)
	if got < 0 {
		return append(dst, make([]int16, n)...)
	}
	return append(dst, d.buf[:got]...)
}
