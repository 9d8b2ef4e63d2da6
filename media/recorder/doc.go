// Package recorder records a hub's stream: it subscribes like a viewer,
// cuts the frames into fragmented-MP4 fragments (package fmp4) and hands
// them to the store (package recordings) according to the mode.
//
//   - continuous: every fragment is stored.
//   - motion: fragments wait in a pre-roll ring in memory (default 5 s);
//     when motion starts (the detector on raw pictures, or a trigger from
//     outside such as a PIR input or an API call) the ring is written,
//     then every fragment until the post-roll (default 10 s) after the
//     last motion has run out. Each such span is reported through
//     Options.OnSpan, when it starts and when it ends.
//   - off: the recorder holds no subscription and costs nothing.
//
// For a source that encodes itself, the recorder asks for a keyframe just
// before each fragment is due, so that fragments of about a second start
// on keyframes; a kill or power cut then loses at most the fragment being
// built. The store is written from a goroutine of its own behind a short
// queue: a slow or failing card never holds up the hub, and the hub never
// holds up live view. That goroutine has one commit in flight at a time:
// a fragment that finds the store idle is committed at once, alone, and
// those that arrive during a commit go together in the next one
// (recordings.Store.AppendBatch), so a slow card is written less often
// rather than falling further behind.
//
// Its clock is the time package's: the post-roll, the holds of triggers
// (one timer for the first to run out) and the fragments' times. The
// tests run a recorder, its hub and a camera in testing/synctest bubbles,
// where time is fake: seconds of recording take milliseconds, and every
// timer fires exactly when due.
package recorder
