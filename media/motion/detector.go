package motion

import (
	"errors"
	"fmt"
	"image"
	"slices"
	"sync"
	"time"
)

// Region is a rectangle of the picture to watch, in fractions of its width
// and height (0..1).
type Region struct {
	X, Y, W, H float64
}

// Options tune a Detector. The zero value means defaults.
type Options struct {
	// Sensitivity is 1 (only large, strong changes) to 100 (a few cells
	// changing slightly); default 50.
	Sensitivity int
	// Regions to watch; none means the whole picture.
	Regions []Region
	// Interval is the least time between two analysed pictures (default
	// 200 ms: five a second).
	Interval time.Duration
	// Hold keeps motion on this long after the last picture that moved
	// (default 1 s), so that a pause in a movement does not end it.
	Hold time.Duration
	// OnChange is called when motion starts and when it ends, on the
	// goroutine that called Offer; it must not block.
	OnChange func(active bool, at time.Time)
}

// ErrOptions marks options out of range.
var ErrOptions = errors.New("motion: bad option")

// Validate checks the options.
func (o Options) Validate() error {
	if o.Sensitivity < 0 || o.Sensitivity > 100 {
		return fmt.Errorf("%w: sensitivity %d must be within 1..100", ErrOptions, o.Sensitivity)
	}
	for i, r := range o.Regions {
		if r.X < 0 || r.Y < 0 || r.W <= 0 || r.H <= 0 || r.X+r.W > 1.0001 || r.Y+r.H > 1.0001 {
			return fmt.Errorf("%w: region %d %+v must lie within 0..1 with a positive size", ErrOptions, i, r)
		}
	}
	return nil
}

const cell = 16 // cell size in pixels

// Detector finds motion in pictures offered to it. Offer and the getters
// are safe to call from different goroutines.
type Detector struct {
	opts Options

	mu         sync.Mutex
	last       time.Time // last analysed picture
	lastMotion time.Time
	active     bool
	cols, rows int
	cur, prev  []int32
	mask       []bool // cells watched
	watched    int
	havePrev   bool
	score      int // cells that moved in the last analysed picture
	needed     int
	analysed   uint64
}

// New returns a detector.
func New(opts Options) (*Detector, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Sensitivity == 0 {
		opts.Sensitivity = 50
	}
	if opts.Interval <= 0 {
		opts.Interval = 200 * time.Millisecond
	}
	if opts.Hold <= 0 {
		opts.Hold = time.Second
	}
	if opts.OnChange == nil {
		opts.OnChange = func(bool, time.Time) {}
	}
	return &Detector{opts: opts}, nil
}

// SetSensitivity changes the sensitivity (1..100).
func (d *Detector) SetSensitivity(s int) error {
	if s < 1 || s > 100 {
		return fmt.Errorf("%w: sensitivity %d must be within 1..100", ErrOptions, s)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.opts.Sensitivity = s
	d.needed = 0
	return nil
}

// thresholds: the luma change of a cell that counts as moved, and the
// share of watched cells that must move.
func thresholds(sensitivity int) (luma int32, share float64) {
	inv := float64(100 - sensitivity) // 0 (most sensitive) .. 99
	return int32(3 + inv*0.3), 0.0003 + inv*0.0002
}

// Offer hands the detector a picture captured at at. It analyses it if
// Interval has passed since the last one, and returns at once otherwise.
// The picture is only read during the call.
func (d *Detector) Offer(pic *image.YCbCr, at time.Time) {
	d.mu.Lock()
	if !d.last.IsZero() && at.Sub(d.last) < d.opts.Interval && at.After(d.last) {
		d.mu.Unlock()
		return
	}
	d.last = at
	moved := d.analyse(pic)
	var change, active bool
	if moved {
		d.lastMotion = at
		if !d.active {
			d.active, change, active = true, true, true
		}
	} else if d.active && at.Sub(d.lastMotion) >= d.opts.Hold {
		d.active, change = false, true
	}
	d.mu.Unlock()
	if change {
		d.opts.OnChange(active, at)
	}
}

// analyse averages the cells and compares them with the previous picture.
// It is called with d.mu held.
func (d *Detector) analyse(pic *image.YCbCr) bool {
	b := pic.Rect
	cols, rows := b.Dx()/cell, b.Dy()/cell
	if cols == 0 || rows == 0 {
		return false
	}
	if cols != d.cols || rows != d.rows {
		d.cols, d.rows = cols, rows
		d.cur, d.prev = make([]int32, cols*rows), make([]int32, cols*rows)
		d.mask = make([]bool, cols*rows)
		d.watched = 0
		for y := range rows {
			for x := range cols {
				if d.inRegions(x, y) {
					d.mask[y*cols+x] = true
					d.watched++
				}
			}
		}
		d.havePrev, d.needed = false, 0
	}
	clear(d.cur)
	// Sum every other pixel of every other row: 64 samples a cell.
	for y := 0; y < rows*cell; y += 2 {
		row := pic.Y[pic.YOffset(b.Min.X, b.Min.Y+y):]
		sums := d.cur[(y/cell)*cols : (y/cell+1)*cols]
		for cx := range cols {
			s := int32(0)
			px := row[cx*cell : cx*cell+cell]
			for i := 0; i < cell; i += 2 {
				s += int32(px[i])
			}
			sums[cx] += s
		}
	}
	d.analysed++
	if !d.havePrev {
		d.cur, d.prev = d.prev, d.cur
		d.havePrev = true
		return false
	}
	// Discount the change common to the whole picture: the median.
	diffs := make([]int32, 0, len(d.cur))
	for i := range d.cur {
		diffs = append(diffs, d.cur[i]-d.prev[i])
	}
	sorted := slices.Clone(diffs)
	slices.Sort(sorted)
	median := sorted[len(sorted)/2]
	luma, share := thresholds(d.opts.Sensitivity)
	limit := luma * 64 // sums of 64 samples
	moved := 0
	for i, v := range diffs {
		if !d.mask[i] {
			continue
		}
		v -= median
		if v > limit || v < -limit {
			moved++
		}
	}
	d.cur, d.prev = d.prev, d.cur
	d.needed = max(1, int(float64(d.watched)*share+0.5))
	d.score = moved
	return moved >= d.needed
}

// inRegions reports whether the cell's centre lies in a watched region.
func (d *Detector) inRegions(x, y int) bool {
	if len(d.opts.Regions) == 0 {
		return true
	}
	fx := (float64(x) + 0.5) / float64(d.cols)
	fy := (float64(y) + 0.5) / float64(d.rows)
	for _, r := range d.opts.Regions {
		if fx >= r.X && fx < r.X+r.W && fy >= r.Y && fy < r.Y+r.H {
			return true
		}
	}
	return false
}

// Active reports whether there is motion now.
func (d *Detector) Active() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.active
}

// Stats is what the detector saw last.
type Stats struct {
	Active      bool   `json:"active"`
	Analysed    uint64 `json:"analysed"`
	Moved       int    `json:"cells_moved"`
	Needed      int    `json:"cells_needed"`
	Watched     int    `json:"cells_watched"`
	Sensitivity int    `json:"sensitivity"`
}

// Stats returns the detector's state.
func (d *Detector) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return Stats{Active: d.active, Analysed: d.analysed, Moved: d.score, Needed: d.needed, Watched: d.watched, Sensitivity: d.opts.Sensitivity}
}
