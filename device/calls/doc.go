// Package calls is the doorbell's call state machine (docs/calls.md): a
// press of the doorbell or the owner's request rings every paired phone;
// the first phone to answer gets the call, the others are told it was
// answered elsewhere; a call nobody answers is missed after the ring
// timeout, one every phone declined is declined, one a phone answered
// busy is busy; an answered call ends when either side hangs up, its
// connection fails, or it lasts the maximum duration. One call at a
// time. Every transition is told in order to Options.Notify, which the
// daemon turns into events (call.ringing, call.answered, …).
//
// The package knows nothing of media or HTTP: device/api asks it who
// wins an answer, and the media path hangs up through it.
package calls
