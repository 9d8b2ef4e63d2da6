// Package whep serves live view over WebRTC, signalled by WHEP
// (draft-ietf-wish-whep; RFC 9725 is WHIP, its publishing twin), and holds
// the matching client that camctl uses, and the WHIP publisher
// (Publisher) that sends the live stream to an SFU.
//
// A viewer POSTs an SDP offer and gets the answer with a Location and an
// ETag for its session, and the configured ICE servers as Link headers
// (rel="ice-server"); OPTIONS answers 204; PATCH trickles ICE candidates
// (If-Match must name the ETag) and DELETE ends the session. The answer
// names one payload type per codec, the one the session sends: for H.264
// the first format of the offer with packetization mode 1 and the
// stream's profile (read from its SPS), else the first with mode 1; pion
// gets the offer without the formats camd never sends nor hears (VP8,
// VP9, AV1, RTX...), which it would otherwise keep for the session's
// life. All sessions share one UDP port through pion's ICE UDP mux. A session
// subscribes to the media hub only once DTLS is connected, so the first
// packet it sends is a fresh keyframe. RTP payloads are cut once per frame
// and shared by every viewer; each viewer keeps only a ring of references
// to them to answer NACKs. The send path allocates nothing per packet: a
// track reuses one RTP header, and camd's own interceptor stamps the
// transport-wide sequence numbers (pion's allocates for each). The live
// stream is sent by one goroutine per core (fanout): a frame wakes each
// shard once, and the shard writes it to each of its viewers in turn, so
// that the packets of several viewers leave in one sendmmsg
// (golang.org/x/net/ipv4 WriteBatch) on the shared socket, under pion's
// ICE mux (batchConn); where the kernel has UDP GSO, a frame's packets to
// one viewer are one message that the kernel segments. Each viewer keeps
// its own hub queue, so a viewer that falls behind drops frames alone,
// and a joining viewer's replayed group of pictures is paced by a
// deadline of its own.
// When the offer names them, the first packet of
// each video frame carries the frame's capture wall clock
// (abs-capture-time: a browser can tell how old the picture it shows is)
// and a playout delay of zero (playout-delay: the browser shows each frame
// once decoded, so that a replayed group of pictures catches up with live
// at once). The viewers' transport-wide congestion-control
// estimates (GCC) steer the encoder's bitrate within configured bounds.
//
// A session belongs to the user who offered it (Options.User): another
// user's PATCH or DELETE gets 404, EndUser ends all of a user's sessions
// and EndSession any one. A user holds at most MaxViewersPerUser sessions,
// and the last of MaxViewers is kept for an owner. Of the remote
// candidates (at most MaxCandidates per session), pion gets only those in
// the address family and scope of the request that carried them, unless
// Options.RemoteAccess is set.
//
// One goroutine owns each session: pion's state changes, the ICE timeout
// and the end of the session all reach it, and it alone subscribes to the
// hub, starts sending and tears the session down, so a state change that
// arrives after the end is ignored. Every goroutine of a session starts
// while the server is open and Server.Close waits for all of them.
//
// A Publisher is a WHIP client (RFC 9725): one more consumer of the hub,
// from a fresh keyframe, whose frames go out on the same tracks as a
// viewer's. It asks the endpoint for ICE servers (OPTIONS, Link
// headers), offers every candidate at once (no trickle), answers PLI and
// NACK as a session does, deletes its session resource when a connection
// ends, and connects again after a pause that doubles up to a cap; an
// endpoint that refuses the token (401, 403) is not tried again.
package whep
