package mqtttest

import (
	"context"
	"testing"

	"github.com/camd-project/camd/internal/testenv"
)

// TestStopRightAfterStart: a broker stopped as soon as it listens stops
// (mosquitto loses about 1 SIGINT in 50 sent that soon on a loaded
// machine; Stop asks again). Before, such a test hung until its binary's
// timeout; here a Stop that never returns fails the test, saying so.
func TestStopRightAfterStart(t *testing.T) {
	ctx, cancel := testenv.Context(t, context.Background())
	defer cancel()
	for i := range 100 {
		b := Start(t, Options{})
		stopped := make(chan struct{})
		go func() {
			b.Stop()
			b.Stop() // safe twice
			close(stopped)
		}()
		select {
		case <-stopped:
		case <-ctx.Done():
			t.Fatalf("broker %d never stopped", i)
		}
	}
}
