// Package synthetic is the built-in synthetic camera, camd's source when no
// camera is configured. It draws a moving test picture, encodes it to H.264
// with openh264 and publishes it with a beeping Opus tone, in real time.
//
// # Picture
//
// Drawn straight into I420 planes (no RGBA round trip): 75% colour bars
// scrolling left over the top two thirds, a grey ramp below, a box
// bouncing over both, and, bottom left on black, the wall clock
// (HH:MM:SS.mmm, local time, the moment the frame was drawn) and the frame
// number in basicfont's 7x13 glyphs scaled by Height/120 (52 pixels high at
// 640x480). A late tick skips frame numbers rather than drifting, so the
// counter shows dropped frames. A faint grain (0..4 luma steps, new every
// frame) covers the picture; see below for why. Drawing costs 0.15 ms at
// 640x480 and 0.34 ms at 1280x720 (AMD EPYC, one core).
//
// # Sound
//
// 48 kHz mono, 20 ms Opus packets (32 kbps), published as each packet's
// last sample falls due, PTS from the sample count. A 100 ms beep (440 Hz by
// default, an octave higher every tenth second) starts on every wall-clock
// second, as the clock in the picture turns to .000: the pair checks A/V
// sync by eye and ear. Options.NoAudio turns audio off; SetMute sends
// silence instead.
//
// # Rate control (what openh264 really does)
//
// The design brief recorded that openh264 ignored a 1 Mbps BitRate (about
// 7 Mbps came out of the mediadevices test pattern). Measured with
// openh264 2.1.1 as bundled with mediadevices v0.9.4:
//
//   - The cause was the frame rate, not the bitrate. mediadevices passes
//     prop.Media.Video.FrameRate to openh264 as fMaxFrameRate, and
//     RC_BITRATE_MODE budgets bitrate/fMaxFrameRate bits per picture. Left
//     at 0 the budget is many times too big and the quantizer sits at its
//     floor: 7.2 Mbps for a 1 Mbps target on the videotest pattern,
//     4.0 Mbps on ours. With FrameRate set, ours comes out at 1.0 Mbps
//     (videotest's at 1.2 Mbps: see the noise below).
//     openh264 also clamps the rate to 60 fps, so pictures fed faster than
//     60 fps exceed the target in proportion (120 fps gave 2x): FPS is
//     limited to 60.
//   - Units: BitRate is bits per second. The mediadevices bridge sets
//     iTargetBitrate and iMaxBitrate (and the layer's) to it; SetBitRate
//     does the same at run time, through SetOption(SVC_ENCODE_PARAM_EXT),
//     without an IDR, and takes effect within a second.
//   - openh264 restricts the quantizer to 12..42 whatever is asked
//     ("Change QP Range from(0,51) to (12,42)" on stderr; the bridge has
//     no way to set the range or silence openh264's log). So the output
//     can only follow the target where the picture needs more than the
//     target at QP 12 and less at QP 42. The flat pattern (bars, ramp,
//     box, text) needs only about 0.2 Mbps at 640x480 at QP 12: every
//     target above that came out at that rate (0.23x of 1 Mbps). The
//     videotest pattern's full-swing binary noise is the other extreme:
//     at QP 42 it still needs 2.4x a 1 Mbps target, so only frame
//     skipping holds the rate (1.2x, half the pictures skipped).
//   - The grain fixes the first case the way a real sensor's noise does:
//     at low QP it costs bits, at high QP it quantizes away. With it, at
//     30 fps with an IDR every 2 s, every one-second window after the
//     first was within 6% of the target at 0.3, 1 and 2 Mbps at both
//     640x480 and 1280x720 (the first second: 0.88-1.03x). Above about
//     3.5 Mbps at 640x480 the grain is exhausted too (4 Mbps gave 0.89x,
//     8 Mbps 0.5x). Options.Flat drops the grain.
//   - RCMode: RC_BITRATE_MODE (used) and RC_QUALITY_MODE both tracked the
//     target; RC_BUFFERBASED_MODE ignores the bitrate (7.8x); RC_OFF_MODE
//     is a fixed QP (0.19x). RC_TIMESTAMP_MODE cannot be trusted here: the
//     bridge passes no timestamps.
//   - EnableFrameSkip: on (used). With the grain it skips little (0-6
//     pictures in 300; 16 at 1280x720 and 0.3 Mbps); it is what holds the
//     rate on noisy input such as a camera in low light. A skipped picture yields no output and is
//     not published; a keyframe forced on a skipped picture is forced
//     again on the next.
//   - IntraPeriod does not change the rate noticeably; openh264's own
//     period is off (0) and IDRs are forced from Go instead: on the first
//     picture, on KeyframeRequested, and every KeyframeInterval of PTS.
//   - One slice and one thread: more threads bought nothing at these
//     sizes. Encoding costs about 1.1 ms per picture at 640x480 and
//     2.6 ms at 1280x720 at 2 Mbps (AMD EPYC, one core); under
//     qemu-aarch64 emulation 20 ms and 49 ms.
//
// # Defaults
//
// 640x480 at 30 fps and 2 Mbps. Draw plus encode take about 1.3 ms per
// frame at 640x480 (4% of one core at 30 fps) against 2.9 ms at 1280x720
// (9%); the smaller size also keeps real time under qemu-aarch64 (21 ms of
// the 33 ms frame time, where 1280x720 needs 51 ms) and leaves room on the
// slow ARM cores of camera boards, where the synthetic camera is a
// fallback rather than the product. The clock stays readable at 640x480.
package synthetic
