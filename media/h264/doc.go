// Package h264 reads H.264 elementary streams in Annex-B form, as hardware
// encoders of camera SoCs write them to a file, a FIFO or a pipe.
//
// A Splitter cuts a byte stream, delivered in chunks of any size, into whole
// access units (one coded picture with its parameter sets and SEI) using the
// boundary rules of ITU-T H.264 7.4.1.2.3. It detects input that is not
// H.264 at all (ErrNotH264), bounds what it buffers (MaxNALUSize,
// MaxAccessUnitSize) and never returns the last access unit of a stream,
// which cannot be known to be complete: it is dropped and counted in
// SplitterStats.DroppedTail.
//
// NALUs cuts a byte string that is known to be whole (an access unit, an
// encoder's output) into its NAL units, and Describe says what they are;
// the synthetic and V4L2 sources' encoder (package media/encoder) reads
// its output with them.
//
// ParamSets remembers a stream's last SPS and PPS and inserts them into
// keyframes that lack them, so that every keyframe is decodable alone.
// ParseSPS reads the picture size, profile, level and frame rate of a
// sequence parameter set.
package h264
