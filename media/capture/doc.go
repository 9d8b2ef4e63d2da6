// Package capture is the camera source: a V4L2 device read through
// pion/mediadevices' camera driver, converted to I420 and encoded to H.264
// with openh264 exactly as the synthetic camera is (package
// media/encoder): keyframes on request and every KeyframeInterval,
// bitrate following the hub's target. Alongside it, unless
// Options.NoAudio, the microphone is recorded and encoded to Opus as the
// synthetic tone is: 48 kHz mono, 20 ms packets, PTS from the sample count
// on the video's timeline. SetMute sends silence instead.
//
// The real implementation builds on Linux with cgo; elsewhere Run returns
// ErrUnavailable. A missing device fails Run with
// "capture: open /dev/video0: no such device" (ErrNoDevice), so the
// supervisor retries until the camera appears.
//
// Importing the package registers mediadevices' camera driver, whose
// init opens every /dev/video* node once to read its name. A camera
// plugged in later is found by a new scan when Run does not know it.
//
// # Microphone
//
// The microphone is an ALSA capture device opened through miniaudio
// (github.com/gen2brain/malgo), which converts whatever the device offers
// to 48 kHz mono 16-bit samples. Options.Microphone picks one by name; by
// default Run takes ALSA's default device, else the first sound card that
// opens. Run lists the devices each time it starts, so a microphone
// plugged in later is found on the next restart. If none is found or none
// opens, Run logs a warning (once, until a microphone works again) and
// streams video only: many cameras have no microphone. A microphone that
// stops while running (unplugged) or delivers nothing for 2 s ends Run
// with an error, and the supervisor restarts it.
//
// mediadevices' microphone driver is not used: its package init lists
// the devices in every program that imports it, whether or not it records,
// and panics when ALSA fails (a malformed asound.conf crashed the program
// before main); its reader blocks for ever when read after Close. Here
// nothing touches ALSA until Run asks for audio.
//
// On a host without a sound card ALSA lists only its "null" device, which
// is left out unless asked for by name (it delivers zeros as fast as they
// are read; the PTS still follow the wall clock, see below). Opening a
// missing device makes alsa-lib print its own errors on stderr ("ALSA lib
// pcm.c:2666:(snd_pcm_open_noupdate) Unknown PCM ..."); camd cannot
// silence them without linking libasound.
//
// The microphone's clock is not the system's. The PTS follow the sample
// count but are kept within 60 ms ahead of and 100 ms behind the wall
// clock (the least lag over 2 s, as deliveries can be late): samples that
// run ahead are dropped, and a lag (samples lost when the reader fell
// behind, or a slow clock) is skipped over, leaving a gap in the stream.
package capture
