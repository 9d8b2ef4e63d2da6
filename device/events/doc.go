// Package events is the live side of the event log: a Bus that
// storage/eventlog tells of each event it stores (eventlog.Options.Notify)
// and that hands them to subscribers, the API's server-sent event
// streams.
//
// A subscriber that resumes (Subscription's after: the last ID it saw)
// first reads what it missed from the log, then gets the events
// published since it subscribed: the seam between the two is an ID read
// while no event is being published, so nothing is missed and nothing
// comes twice. Each subscriber holds at most Options.Buffer events; one
// that falls that far behind is cut off (ErrOverflow) instead of slowing
// the publisher, and resumes from the log when it comes back. Viewers
// get only the media events (Visible); owners get every event.
package events
