package motion

import (
	"image"
	"math/rand/v2"
	"testing"
	"time"
)

// scene draws a textured still picture with sensor-like noise and,
// optionally, a bright box at x, y.
func scene(w, h int, rng *rand.Rand, noise int, box *image.Rectangle, gain int) *image.YCbCr {
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	for y := range h {
		for x := range w {
			v := 60 + (x*7+y*3)%90 + gain
			if noise > 0 {
				v += rng.IntN(2*noise+1) - noise
			}
			if box != nil && (image.Point{x, y}).In(*box) {
				v = 230
			}
			img.Y[y*img.YStride+x] = uint8(min(max(v, 0), 255))
		}
	}
	return img
}

type change struct {
	active bool
	at     time.Time
}

func run(t *testing.T, opts Options, frames func(i int) *image.YCbCr, n int) ([]change, *Detector) {
	t.Helper()
	var changes []change
	opts.OnChange = func(a bool, at time.Time) { changes = append(changes, change{a, at}) }
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_700_000_000, 0)
	for i := range n {
		d.Offer(frames(i), t0.Add(time.Duration(i)*100*time.Millisecond))
	}
	return changes, d
}

func TestStillNoisySceneHasNoMotion(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, s := range []int{50, 90} {
		changes, d := run(t, Options{Sensitivity: s}, func(int) *image.YCbCr { return scene(320, 240, rng, 6, nil, 0) }, 50)
		if len(changes) != 0 {
			t.Errorf("sensitivity %d: motion in a still scene: %v (%+v)", s, changes, d.Stats())
		}
	}
}

func TestLightingChangeIsNotMotion(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	changes, _ := run(t, Options{}, func(i int) *image.YCbCr { return scene(320, 240, rng, 3, nil, (i/10)*15) }, 50)
	if len(changes) != 0 {
		t.Errorf("a global brightness step counted as motion: %v", changes)
	}
}

func TestMovingBoxIsMotionThenStops(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 3))
	frames := func(i int) *image.YCbCr {
		if i >= 20 && i < 40 {
			r := image.Rect(10+i*4, 60, 50+i*4, 120)
			return scene(320, 240, rng, 4, &r, 0)
		}
		return scene(320, 240, rng, 4, nil, 0)
	}
	changes, d := run(t, Options{Interval: 200 * time.Millisecond, Hold: time.Second}, frames, 70)
	if len(changes) != 2 || !changes[0].active || changes[1].active {
		t.Fatalf("changes: %+v", changes)
	}
	t0 := time.Unix(1_700_000_000, 0)
	if on := changes[0].at.Sub(t0); on < 2*time.Second || on > 2500*time.Millisecond {
		t.Errorf("motion started at %v, the box at 2 s", on)
	}
	if off := changes[1].at.Sub(t0); off < 5*time.Second || off > 5600*time.Millisecond {
		t.Errorf("motion ended at %v, the box stopped at 4 s and Hold is 1 s", off)
	}
	if d.Active() || d.Stats().Analysed < 30 {
		t.Errorf("stats: %+v", d.Stats())
	}
}

func TestRegionsLimitWhatIsWatched(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 4))
	box := image.Rect(20, 20, 80, 80) // top left
	frames := func(i int) *image.YCbCr {
		if i%2 == 1 {
			return scene(320, 240, rng, 2, &box, 0)
		}
		return scene(320, 240, rng, 2, nil, 0)
	}
	changes, _ := run(t, Options{Interval: 50 * time.Millisecond, Regions: []Region{{X: 0.5, Y: 0.5, W: 0.5, H: 0.5}}}, frames, 30)
	if len(changes) != 0 {
		t.Errorf("motion outside the region counted: %v", changes)
	}
	changes, _ = run(t, Options{Interval: 50 * time.Millisecond, Regions: []Region{{X: 0, Y: 0, W: 0.5, H: 0.5}}}, frames, 30)
	if len(changes) == 0 {
		t.Error("motion inside the region missed")
	}
}

func TestBadOptions(t *testing.T) {
	for _, o := range []Options{
		{Sensitivity: 101}, {Sensitivity: -1},
		{Regions: []Region{{X: 0.5, Y: 0, W: 0.6, H: 1}}}, {Regions: []Region{{X: 0, Y: 0, W: 0, H: 1}}},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	d, _ := New(Options{})
	if d.SetSensitivity(0) == nil || d.SetSensitivity(80) != nil {
		t.Error("SetSensitivity bounds")
	}
}

func BenchmarkOffer720p(b *testing.B) {
	img := scene(1280, 720, rand.New(rand.NewPCG(1, 5)), 3, nil, 0)
	d, _ := New(Options{Interval: time.Nanosecond})
	t0 := time.Unix(0, 0)
	b.ResetTimer()
	for i := range b.N {
		d.Offer(img, t0.Add(time.Duration(i)*time.Millisecond))
	}
}
