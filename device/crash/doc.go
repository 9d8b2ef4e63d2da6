// Package crash turns a fatal error of the previous run into a crash
// report the owner decides about (docs/observability.md).
//
// Arm points runtime/debug.SetCrashOutput at a file in the data
// directory, after a header line that says which version started when.
// At the next start Open finds the trace there and, unless the mode is
// never, keeps a report (version, uptime, trace, the log's last lines)
// and records an event. With ask a report leaves the device only when
// the owner sends it (Send); with send it is uploaded to the configured
// https collector at once. Nothing is sent otherwise.
package crash
