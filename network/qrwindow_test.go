//go:build !camd_noqrscan

package network_test

import (
	"context"
	"image"
	"image/color"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	qr "github.com/skip2/go-qrcode"

	"github.com/camd-project/camd/media/snapshot"
	"github.com/camd-project/camd/network"
)

// lens is a camera's raw pictures: a grey scene, and from the shown-th
// picture on a QR code held up in it (a phone's screen), off centre.
type lens struct {
	code   string
	shown  int64
	grabs  atomic.Int64
	scene  *image.YCbCr
	withQR *image.YCbCr
}

func newLens(t *testing.T, code string, shown int64) *lens {
	t.Helper()
	l := &lens{code: code, shown: shown, scene: picture(nil), withQR: picture(nil)}
	if code != "" {
		q, err := qr.New(code, qr.Medium)
		if err != nil {
			t.Fatal(err)
		}
		l.withQR = picture(q.Image(240))
	}
	return l
}

// picture is a 640x360 4:2:0 picture, grey, with qr drawn at (300, 60).
func picture(qr image.Image) *image.YCbCr {
	p := image.NewYCbCr(image.Rect(0, 0, 640, 360), image.YCbCrSubsampleRatio420)
	for i := range p.Y {
		p.Y[i] = 90
	}
	for i := range p.Cb {
		p.Cb[i], p.Cr[i] = 128, 128
	}
	if qr != nil {
		b := qr.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				p.Y[p.YOffset(300+x, 60+y)] = color.GrayModel.Convert(qr.At(x, y)).(color.Gray).Y
			}
		}
	}
	return p
}

func (l *lens) Grab(ctx context.Context) (snapshot.Picture, error) {
	if l.grabs.Add(1) >= l.shown && l.code != "" {
		return snapshot.Picture{Image: l.withQR, Captured: time.Now()}, nil
	}
	return snapshot.Picture{Image: l.scene, Captured: time.Now()}, nil
}

// settled waits (on the bubble's clock) for the window to end.
func settled(r *network.CodeReader) network.CodeStatus {
	for {
		st := r.Status()
		if st.State != network.CodeScanning && st.State != network.CodeJoining {
			return st
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The owner opens the window, a phone shows its Wi-Fi code to the lens,
// and the camera joins the network the code names, or says why not.
func TestCodeReaderJoins(t *testing.T) {
	for _, c := range []struct {
		name, code string
		want       network.CodeState
		reason     string
	}{
		{"joins", "WIFI:T:WPA;S:camd-sim-home;P:camd-sim-passphrase;;", network.CodeJoined, ""},
		{"wrong password", "WIFI:T:WPA;S:camd-sim-home;P:not-the-passphrase;;", network.CodeFailed, "wrong_key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sim := network.NewSim(network.SimNetworks()...)
				l := newLens(t, c.code, 3)
				r := network.NewCodeReader(network.CodeOptions{Pictures: l, Join: sim.Join})
				defer r.Close()
				if st := r.Start(); st.State != network.CodeScanning || time.Until(st.Until) != 2*time.Minute {
					t.Fatalf("start: %+v", st)
				}
				st := settled(r)
				if st.State != c.want || st.SSID != "camd-sim-home" || st.Reason != c.reason {
					t.Fatalf("%+v", st)
				}
				if l.grabs.Load() != 3 {
					t.Errorf("read %d pictures, the code was in the third", l.grabs.Load())
				}
				if c.want == network.CodeJoined {
					if ls, _ := sim.Status(context.Background()); ls.SSID != "camd-sim-home" {
						t.Errorf("link: %+v", ls)
					}
				}
			})
		})
	}
}

// The window closes after 2 minutes without a Wi-Fi code, and reads no
// picture after; a QR code that is not a Wi-Fi code is passed over; the
// owner can close the window early.
func TestCodeReaderWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLens(t, "camd1:https://example.invalid/not-a-wifi-code", 1)
		r := network.NewCodeReader(network.CodeOptions{Pictures: l, Join: network.NewSim().Join, Interval: 2 * time.Second})
		defer r.Close()
		start := time.Now()
		r.Start()
		if st := settled(r); st.State != network.CodeExpired {
			t.Fatalf("%+v", st)
		}
		if open := time.Since(start); open < 2*time.Minute || open > 2*time.Minute+time.Second {
			t.Errorf("the window was open %v", open)
		}
		n := l.grabs.Load()
		time.Sleep(time.Minute)
		if l.grabs.Load() != n {
			t.Error("pictures read after the window closed")
		}

		r.Start()
		time.Sleep(time.Second)
		r.Stop()
		if st := r.Status(); st.State != network.CodeStopped {
			t.Fatalf("stopped: %+v", st)
		}
	})
}

// TestDecodeQRReadsHardCodes: codes gozxing's finder search misses in a
// clean picture (found among 1,500 random Wi-Fi codes; zbar reads them)
// are read by the second look, and so are ordinary ones, anywhere in a
// picture whose rectangle does not start at the origin.
func TestDecodeQRReadsHardCodes(t *testing.T) {
	codes := []string{
		"WIFI:T:WPA;S:net-ae3a17ec78223325;P:bf716874180829ed;;",
		"WIFI:T:WPA;S:net-82ba53848153c129;P:d35cc00d4b6e45c5;;",
		"WIFI:T:WPA;S:net-f29e946742eaddb1;P:84892f45af473ff5;;",
		"WIFI:T:WPA;S:net-3f714c9776897e7d;P:5811096628ece881;;",
		"WIFI:T:WPA;S:net-636d65023e86f97d;P:9f003de072cbeeff;;",
		"WIFI:T:WPA;S:net-1209b7e98eb1b45c;P:c946e7a4de8532f3;;",
		"WIFI:T:WPA;S:net-357c82b330bb7b8a;P:c9729d572ee4643a;;",
		"WIFI:T:WPA;S:home;P:correct horse battery staple;;",
	}
	for _, code := range codes {
		q, err := qr.New(code, qr.Medium)
		if err != nil {
			t.Fatal(err)
		}
		p := picture(q.Image(240))
		if got, ok := network.DecodeQR(p); !ok || got != code {
			t.Errorf("%q read as %q (%v)", code, got, ok)
		}
		// The same picture as a part of a larger one.
		sub := p.SubImage(image.Rect(200, 40, 600, 340)).(*image.YCbCr)
		if got, ok := network.DecodeQR(sub); !ok || got != code {
			t.Errorf("%q in a sub-picture read as %q (%v)", code, got, ok)
		}
	}
	if got, ok := network.DecodeQR(picture(nil)); ok {
		t.Errorf("a picture without a code read as %q", got)
	}
}
