// Package passthrough is the hardware-encoder path of camera SoCs: it reads
// the H.264 Annex-B stream that the SoC's encoder writes and publishes each
// access unit as a media.Frame, without decoding or re-encoding.
//
// The stream comes from a file (looped and paced at the stream's frame
// rate, for development and demos), a named pipe the vendor's encoder
// program writes into, or the standard output of a command that camd
// starts. Each run begins at a keyframe; keyframes that lack inline SPS and
// PPS get the last ones seen, so a viewer can start from any of them. The
// source cannot make keyframes on request (SourceInfo.ForcesKeyframes is
// false): the hub's cache of the last group of pictures serves joining
// viewers instead.
package passthrough
