package device

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/notify/webhooks"
	"github.com/camd-project/camd/notify/webpush"
	"github.com/camd-project/camd/storage"
)

// vapidFile is the device's VAPID key (Web Push), in the data directory.
const vapidFile = "vapid.pem"

// notifyState is the sinks that carry events off the device when the
// owner or a user turned them on (docs/push.md): Web Push and webhooks.
// Each is a subscription to the bus that resumes from the last event it
// handled, kept in the catalog.
type notifyState struct {
	push  *webpush.Sink
	hooks *webhooks.Sink
	wg    sync.WaitGroup
}

func openNotify(cfg Config, cat *storage.Catalog, es *eventState, users *pairing.Manager, log *slog.Logger) (*notifyState, error) {
	key, err := webpush.LoadKey(filepath.Join(cfg.Data, vapidFile))
	if err != nil {
		return nil, err
	}
	n := &notifyState{}
	n.push, err = webpush.New(webpush.Options{
		Catalog: cat, Bus: es.bus, History: es.log, Users: users, Key: key,
		Subject: cfg.Push.Subject, AllowPrivate: cfg.Push.AllowPrivateEndpoints, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	n.hooks, err = webhooks.New(webhooks.Options{
		Catalog: cat, Bus: es.bus, History: es.log, Event: es.add,
		UserAgent: "camd/" + Version, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	return n, nil
}

// start runs the sinks until ctx ends.
func (n *notifyState) start(ctx context.Context) {
	n.wg.Go(func() { n.push.Run(ctx) })
	n.wg.Go(func() { n.hooks.Run(ctx) })
}

// close waits for the sinks (their context has ended, or the bus is
// closed) before the catalog closes.
func (n *notifyState) close() {
	n.push.Close()
	n.hooks.Close()
	n.wg.Wait()
}
