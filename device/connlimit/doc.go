// Package connlimit caps the connections a server holds open: in total
// and per client address. Listener wraps a net.Listener; a connection
// over either cap is closed (with a reset) as it is accepted, before any
// TLS, and counted; refusals are logged at most once per interval, never
// once per connection.
package connlimit
