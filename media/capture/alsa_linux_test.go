//go:build linux && cgo && !camd_nocapture

package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/media/encoder"
)

func TestPickMicrophones(t *testing.T) {
	// As miniaudio lists them on a Raspberry Pi with a USB webcam
	// (card 1) and a USB microphone (card 2).
	devs := []micDevice{
		{id: "null", name: "Discard all samples (playback) or generate zero samples (capture)"},
		{id: "default", name: "Default Audio Device", isDefault: true},
		{id: ":1,0", name: "HD Pro Webcam C920, USB Audio"},
		{id: ":2,0", name: "USB PnP Sound Device, USB Audio"},
		{id: "pulse", name: "PulseAudio Sound Server"},
	}
	ids := func(ds []micDevice) string {
		var s []string
		for _, d := range ds {
			s = append(s, d.id)
		}
		return strings.Join(s, " ")
	}
	tests := []struct {
		want string
		devs []micDevice
		got  string
	}{
		{"", devs, "default :1,0 :2,0"},
		{"", devs[:1], ""}, // no sound card: only the null device
		{"", nil, ""},
		{"usb", devs, ":1,0 :2,0"},
		{"C920", devs, ":1,0"},
		{"hw:2", devs, ":2,0"},
		{":2,0", devs, ":2,0"},
		{"device", devs, "default :2,0"},
		{"null", devs, "null"},
		{"pulse", devs, "pulse"},
		// Not listed: tried as an ALSA PCM name.
		{"plughw:CARD=C920,DEV=0", devs, "plughw:CARD=C920,DEV=0"},
		{"usb", nil, "usb"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q of %d", tt.want, len(tt.devs)), func(t *testing.T) {
			if got := ids(pickMicrophones(tt.devs, tt.want)); got != tt.got {
				t.Errorf("pickMicrophones = %q, want %q", got, tt.got)
			}
		})
	}
	if s := devs[2].String(); s != ":1,0 (HD Pro Webcam C920, USB Audio)" {
		t.Errorf("String = %q", s)
	}
}

// TestOpenALSA lists this host's real ALSA capture devices. On a host
// without a sound card ALSA lists only its null device: no microphone.
func TestOpenALSA(t *testing.T) {
	src, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	m, err := src.openALSA("")
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("openALSA took %v", d)
	}
	if err == nil {
		t.Logf("this host has a microphone: %s", m.name)
		m.close()
		return
	}
	t.Logf("openALSA: %v", err)
	// No libasound (qemu-aarch64 without an arm64 one) or a broken
	// asound.conf (ALSA_CONFIG_PATH=bad.conf) are errors too, not panics.
	ok := errors.Is(err, errNoMicrophone)
	for _, prefix := range []string{"capture: open microphone: ", "capture: ALSA unavailable", "capture: list ALSA capture devices: "} {
		ok = ok || strings.HasPrefix(err.Error(), prefix)
	}
	if !ok {
		t.Errorf("openALSA = %v, want no microphone, no ALSA or a failure to list or open", err)
	}
}

// TestALSANullDevice captures from ALSA's null device when asked for it by
// name: real miniaudio capture without a sound card. The device delivers
// zeros as fast as they are read; the stage holds them to real time.
func TestALSANullDevice(t *testing.T) {
	src, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := src.openALSA("null")
	testenv.Need(t, err == nil, "no ALSA null device (scripts/install-deps.sh installs libasound2): %v", err)
	defer m.close()
	if !strings.HasPrefix(m.name, "null") {
		t.Fatalf("opened %s", m.name)
	}
	enc, err := encoder.NewOpus(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	pub := &recordPub{}
	const d = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	if err := src.runAudio(ctx, pub, m, enc, start); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("runAudio = %v", err)
	}
	_, audio := pub.split()
	if max := int((d+maxAudioLead)/blockDur) + 2; len(audio) < 5 || len(audio) > max {
		t.Errorf("%d packets in %v, want at most %d", len(audio), d, max)
	}
	checkPackets(t, audio, start, func(int, time.Duration) bool { return false })
	for i, f := range audio {
		if len(f.Data) > 40 {
			t.Errorf("packet %d of zeros is %d bytes", i, len(f.Data))
		}
	}
}

// TestRunWithHostMicrophone runs the fake camera with this host's real
// ALSA devices: without a microphone (as on a build machine) Run streams
// video only and warns once; with one it records it too.
func TestRunWithHostMicrophone(t *testing.T) {
	dev, _ := registerFakeCamera(t)
	logs := &logRecorder{}
	src, err := New(Options{Device: dev, Video: encoder.H264Options{Width: 320, Height: 240}, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	const warning = "capture: no microphone; streaming video only"
	video, audio := runUntil(t, src, func(video, audio int) bool {
		return video >= 10 && (audio > 0 || logs.count(slog.LevelWarn, warning) > 0)
	})
	checkVideo(t, video, 10)
	warnings := logs.count(slog.LevelWarn, warning)
	if len(audio) == 0 {
		if warnings != 1 {
			t.Errorf("no audio and %d warnings, want one", warnings)
		}
		return
	}
	t.Logf("this host has a microphone: %d packets", len(audio))
	checkPackets(t, audio, audio[0].Captured.Add(-audio[0].PTS), func(_ int, d time.Duration) bool { return d < time.Second })
}
