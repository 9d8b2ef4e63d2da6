package mqtttest

import "testing"

// TestStopRightAfterStart: a broker stopped as soon as it listens stops
// (mosquitto loses about 1 SIGINT in 50 sent that soon on a loaded
// machine; Stop asks again). Before, such a test hung until its binary's
// timeout.
func TestStopRightAfterStart(t *testing.T) {
	for range 100 {
		b := Start(t, Options{})
		b.Stop()
		b.Stop() // safe twice
	}
}
