package events

import (
	"context"
	"errors"
	"time"
)

// Follow runs a durable sink of the device's own (Web Push, webhooks):
// it subscribes to b from the cursor the sink keeps (cursor, read at
// each subscription), gives handle every event after it in order, the
// missed ones from history first, and subscribes again from the cursor
// after a cut (ErrOverflow, ErrEnded), so a restart or a slow spell loses
// nothing. handle moves the cursor once an event is handled; an error
// from it ends this subscription, and after retry Follow subscribes
// again from the cursor, which has not moved past that event. Follow
// returns when ctx ends, the bus closes, or the cursor cannot be read.
func Follow(ctx context.Context, b interface {
	Subscribe(History, Subscriber) (*Subscription, error)
}, history History, cursor func() (uint64, error), handle func(context.Context, *Message) error, retry time.Duration, failed func(error)) {
	for ctx.Err() == nil {
		after, err := cursor()
		if err != nil {
			failed(err)
			return
		}
		sub, err := b.Subscribe(history, Subscriber{Owner: true, Resume: true, After: after})
		if err != nil {
			return // the bus is closed: camd is stopping
		}
		err = follow(ctx, sub, handle)
		sub.Close()
		switch {
		case ctx.Err() != nil, errors.Is(err, ErrClosed):
			return
		case errors.Is(err, ErrOverflow), errors.Is(err, ErrEnded):
			// Cut off: again from the cursor.
		default:
			failed(err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(retry):
			}
		}
	}
}

func follow(ctx context.Context, sub *Subscription, handle func(context.Context, *Message) error) error {
	for {
		m, err := sub.Next(ctx, nil)
		if err != nil {
			return err
		}
		if err := handle(ctx, m); err != nil {
			return err
		}
	}
}
