//go:build linux && cgo && !camd_nocapture

package capture

// #include <stdlib.h>
import "C"

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gen2brain/malgo"

	"github.com/camd-project/camd/media/encoder"
)

// errNoMicrophone means ALSA lists no capture device that Run would use.
var errNoMicrophone = errors.New("no microphone")

// ALSA capture settings.
const (
	// micPeriod is how often miniaudio delivers samples.
	micPeriod = 10 * time.Millisecond
	// micQueue is how many deliveries wait for the reader (0.5 s) before
	// new ones are dropped: the audio thread never blocks.
	micQueue = 50
)

// micDevice is an ALSA capture device as miniaudio lists it.
type micDevice struct {
	// id is the ALSA PCM name; miniaudio lists a card's device as
	// ":card,device" and opens it through dsnoop (shared), else hw.
	id        string
	name      string
	isDefault bool
}

func (d micDevice) String() string {
	if d.name == "" || d.name == d.id {
		return d.id
	}
	return fmt.Sprintf("%s (%s)", d.id, d.name)
}

// openALSA lists the ALSA capture devices and starts the first of those
// that pickMicrophones returns for want that works. Each call uses a
// miniaudio context of its own, freed with the microphone, so the list is
// fresh on every run (the package documentation says why this is not
// mediadevices' microphone driver).
func (s *Source) openALSA(want string) (*mic, error) {
	actx, err := malgo.InitContext([]malgo.Backend{malgo.BackendAlsa}, malgo.ContextConfig{}, func(msg string) {
		if msg = strings.TrimSpace(msg); msg != "" && !strings.HasPrefix(msg, "Loading symbol") {
			s.log.Debug("capture: miniaudio: " + msg)
		}
	})
	if err != nil {
		// miniaudio loads libasound.so.2 at run time: "No backend" means
		// it is not installed.
		return nil, fmt.Errorf("capture: ALSA unavailable (libasound.so.2 missing?): %w", err)
	}
	freeCtx := func() {
		_ = actx.Uninit()
		actx.Free()
	}
	infos, err := actx.Devices(malgo.Capture)
	if err != nil {
		freeCtx()
		return nil, fmt.Errorf("capture: list ALSA capture devices: %w", err)
	}
	devs := make([]micDevice, len(infos))
	for i, info := range infos {
		id, _, _ := bytes.Cut(info.ID[:], []byte{0})
		devs[i] = micDevice{id: string(id), name: info.Name(), isDefault: info.IsDefault != 0}
	}
	cands := pickMicrophones(devs, want)
	if len(cands) == 0 {
		freeCtx()
		return nil, fmt.Errorf("capture: %w among the ALSA capture devices %v", errNoMicrophone, devs)
	}
	var errs []error
	for _, d := range cands {
		m, err := s.startALSA(actx, d)
		if err == nil {
			stop := m.close
			m.close = func() {
				stop()
				freeCtx()
			}
			return m, nil
		}
		errs = append(errs, fmt.Errorf("%v: %w", d, err))
	}
	freeCtx()
	return nil, fmt.Errorf("capture: open microphone: %w", errors.Join(errs...))
}

// pickMicrophones returns the devices to try for want, best first.
//
// With want empty: ALSA's default device, then each card's device
// (":card,device"), in the order listed. The rest are left out: ALSA's
// "null" device (endless zeros, as fast as it is read) and plugins that are
// no microphone of their own.
//
// Otherwise: the devices whose name or ID contains want, ignoring case
// (":1,0" reads as "hw:1,0" too), the default one first; if none does,
// want itself as an ALSA PCM name.
func pickMicrophones(devs []micDevice, want string) []micDevice {
	var first, rest []micDevice
	for _, d := range devs {
		isDefault := d.isDefault || d.id == "default"
		card := strings.HasPrefix(d.id, ":")
		if want != "" {
			text := d.name + "\n" + d.id
			if card {
				text += "\nhw" + d.id
			}
			if !strings.Contains(strings.ToLower(text), strings.ToLower(want)) {
				continue
			}
		} else if !isDefault && !card {
			continue
		}
		if isDefault {
			first = append(first, d)
		} else {
			rest = append(rest, d)
		}
	}
	if want != "" && len(first)+len(rest) == 0 {
		return []micDevice{{id: want}}
	}
	return append(first, rest...)
}

// startALSA starts capturing from d as 48 kHz mono 16-bit PCM (miniaudio
// converts from what the device offers).
func (s *Source) startALSA(actx *malgo.AllocatedContext, d micDevice) (*mic, error) {
	var id malgo.DeviceID
	if len(d.id) >= len(id) {
		return nil, fmt.Errorf("ALSA device name longer than %d bytes", len(id)-1)
	}
	copy(id[:], d.id)
	idC := id.Pointer() // a C copy, which miniaudio reads in InitDevice
	defer C.free(idC)

	cfg := malgo.DefaultDeviceConfig(malgo.Capture)
	cfg.Capture.DeviceID = idC
	cfg.Capture.Format = malgo.FormatS16
	cfg.Capture.Channels = 1
	cfg.SampleRate = encoder.OpusSampleRate
	cfg.PeriodSizeInMilliseconds = uint32(micPeriod / time.Millisecond)

	chunks := make(chan pcmChunk, micQueue)
	stopped := make(chan struct{})
	var (
		stopOnce sync.Once
		lost     atomic.Uint64
	)
	dev, err := malgo.InitDevice(actx.Context, cfg, malgo.DeviceCallbacks{
		// Data runs on miniaudio's thread; in points into miniaudio's
		// buffer, valid only during the call: copy it.
		Data: func(_, in []byte, frames uint32) {
			at := time.Now()
			n := min(int(frames), len(in)/2)
			if n == 0 {
				return
			}
			pcm := make([]int16, n)
			copy(pcm, unsafe.Slice((*int16)(unsafe.Pointer(unsafe.SliceData(in))), n))
			select {
			case chunks <- pcmChunk{samples: pcm, at: at}:
			default:
				lost.Add(uint64(n))
			}
		},
		// Stop runs when the device stops by itself; malgo drops the
		// callbacks before Uninit stops it.
		Stop: func() { stopOnce.Do(func() { close(stopped) }) },
	})
	if err != nil {
		return nil, err
	}
	if err := dev.Start(); err != nil {
		dev.Uninit()
		return nil, err
	}
	return &mic{
		name:    d.String(),
		chunks:  chunks,
		stopped: stopped,
		close: func() {
			dev.Uninit()
			if n := lost.Load(); n > 0 {
				s.log.Warn("capture: microphone samples lost: the reader fell behind", "microphone", d.String(), "samples", n)
			}
		},
	}, nil
}
