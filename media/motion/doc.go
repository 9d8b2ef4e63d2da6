// Package motion detects motion in the raw pictures of a camera, before
// they are encoded.
//
// The detector works on a coarse grid of luma averages (16x16-pixel cells,
// sampling every other pixel), compared with the previous analysed picture
// a few times a second: a cell moved when its average changed by more than
// a threshold after discounting the change common to the whole picture (a
// light turned on, the IR-cut filter switching), and there is motion when
// enough cells of the watched regions moved. Sensitivity (1-100) sets
// both the threshold and the number of cells. Sensor noise averages out
// over a cell; the cost is a fraction of a millisecond per analysed
// picture at 1280x720.
//
// Sources without raw pictures (a hardware encoder's passthrough stream)
// rely on external triggers instead (a PIR input, an API call), which the
// recorder takes directly.
package motion
