// Package events is the live side of the event log: a Bus that
// storage/eventlog tells of each event it stores (eventlog.Options.Notify)
// and that hands them to its subscribers: the API's server-sent event
// streams today, and later every sink that delivers events (Web Push,
// webhooks, MQTT, calls). It also holds the catalogue of event types
// (Types) with who may see them (Visible), and a Reader of server-sent
// event streams for clients and tests.
//
// A subscriber that resumes (Subscriber.Resume, After: the last ID it
// saw) first reads what it missed from the log, then gets the events
// published since it subscribed: the seam between the two is an ID read
// while no event is being published, so nothing is missed and nothing
// comes twice. Each subscriber holds at most Options.Buffer events; one
// that falls that far behind is cut off (ErrOverflow) instead of slowing
// the publisher, and resumes from the log when it comes back. Viewers
// get only the media events (Visible); owners get every event.
// docs/events.md describes the model, the routes and the sink API.
package events
