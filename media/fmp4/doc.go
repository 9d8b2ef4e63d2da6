// Package fmp4 turns a hub's frames into fragmented MP4 and back into a
// playable file.
//
// A Fragmenter cuts the stream into fragments (moof + mdat) of about
// Options.Target, each starting on a keyframe whenever the source gives one
// in time, with the H.264 video on track 1 (90 kHz) and Opus audio on track
// 2 (48 kHz). The init segment (ftyp + moov) describing the tracks is made
// once per stream configuration and changes only when the SPS or PPS change
// or audio appears. Boxes are built with
// github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4.
//
// Every track's base media decode time (tfdt) is wall-clock time since the
// Unix epoch in the track's timescale, so fragments recorded at different
// times never overlap, and a run of fragments is continuous to the tick.
// Retime shifts those times (and renumbers the fragment) in place so that a
// run cut out of a recording starts at zero: an export is the init segment
// followed by retimed fragments, with a size known before the first byte.
package fmp4
