package alsa

import "errors"

// ErrUnavailable: no ALSA in this build (no cgo), or libasound is not
// installed.
var ErrUnavailable = errors.New("alsa: no ALSA playback in this build or on this system")
