package alsa

import "testing"

// TestOpenMissingDevice: a device that does not exist (or a build or
// system without ALSA) is an error, not a speaker that plays nothing.
func TestOpenMissingDevice(t *testing.T) {
	s, err := Open("camd-no-such-pcm", nil)
	if err == nil {
		s.Close()
		t.Fatal("opened a device that does not exist")
	}
}
