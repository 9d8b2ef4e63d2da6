package passthrough_test

import (
	"context"
	"log/slog"
	"os"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/passthrough"
)

// A SoC vendor's encoder program writes H.264 to its standard output;
// camd publishes it into a hub, restarting it when it exits.
func Example() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	src, err := passthrough.New(passthrough.Options{
		Command: []string{"vendor-venc", "--codec", "h264", "--output", "-"},
		Logger:  log,
	})
	if err != nil {
		log.Error("bad passthrough options", "err", err)
		return
	}
	hub := media.NewHub(media.HubOptions{})
	defer hub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go media.Supervise(ctx, src, hub, media.SuperviseOptions{Logger: log})
	// Viewers and the recorder subscribe to hub.
}
