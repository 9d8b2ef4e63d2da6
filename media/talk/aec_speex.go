//go:build cgo && linux && (amd64 || camd_speexdsp)

package talk

// speexdsp's echo canceller and preprocessor, linked statically from
// Debian's libspeexdsp-dev (scripts/install-deps.sh). Other
// architectures build it with the tag camd_speexdsp once the target's
// libspeexdsp.a is installed (docs/calls.md).

/*
#cgo LDFLAGS: -l:libspeexdsp.a -lm
#include <speex/speex_echo.h>
#include <speex/speex_preprocess.h>

static int camd_speex_set_rate(SpeexEchoState *st, int rate) {
	return speex_echo_ctl(st, SPEEX_ECHO_SET_SAMPLING_RATE, &rate);
}
static int camd_speex_preprocess_echo(SpeexPreprocessState *pp, SpeexEchoState *st, int noise) {
	speex_preprocess_ctl(pp, SPEEX_PREPROCESS_SET_NOISE_SUPPRESS, &noise);
	return speex_preprocess_ctl(pp, SPEEX_PREPROCESS_SET_ECHO_STATE, st);
}
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// noiseSuppress is the most the preprocessor turns noise down, in dB:
// none. It is there for the residual echo; its noise suppressor would
// take a steady sound of the camera's (a hum, a tone) for noise, which
// half duplex and live view leave as it is.
const noiseSuppress = 0

// speex is speexdsp's echo canceller (the MDF adaptive filter), followed
// by its preprocessor with the echo state (the residual echo
// suppressor; nil without).
type speex struct {
	st *C.SpeexEchoState
	pp *C.SpeexPreprocessState
}

type speexStates struct {
	st *C.SpeexEchoState
	pp *C.SpeexPreprocessState
}

func newEngine(frame, tail int, suppress bool) (engine, error) {
	st := C.speex_echo_state_init(C.int(frame), C.int(tail))
	if st == nil {
		return nil, fmt.Errorf("talk: speexdsp echo canceller of %d samples", tail)
	}
	C.camd_speex_set_rate(st, Rate)
	e := &speex{st: st}
	if suppress {
		e.pp = C.speex_preprocess_state_init(C.int(frame), Rate)
		C.camd_speex_preprocess_echo(e.pp, st, noiseSuppress)
	}
	runtime.AddCleanup(e, func(s speexStates) {
		if s.pp != nil {
			C.speex_preprocess_state_destroy(s.pp)
		}
		C.speex_echo_state_destroy(s.st)
	}, speexStates{e.st, e.pp})
	return e, nil
}

func (e *speex) cancel(near, far, out []int16) {
	C.speex_echo_cancellation(e.st, pcmPtr(near), pcmPtr(far), pcmPtr(out))
	if e.pp != nil {
		C.speex_preprocess_run(e.pp, pcmPtr(out))
	}
	runtime.KeepAlive(e)
}

func (e *speex) silence(n int) {
	if n <= 0 {
		return
	}
	zero := make([]int16, 3*aecFrame)
	for range n {
		C.speex_echo_cancellation(e.st, pcmPtr(zero[:aecFrame]), pcmPtr(zero[aecFrame:2*aecFrame]), pcmPtr(zero[2*aecFrame:]))
	}
	runtime.KeepAlive(e)
}

func pcmPtr(pcm []int16) *C.spx_int16_t { return (*C.spx_int16_t)(unsafe.Pointer(&pcm[0])) }
