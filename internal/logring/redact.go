package logring

import (
	"context"
	"errors"
	"log/slog"
	"strings"
)

// Redacted replaces a secret's value in the log.
const Redacted = "[redacted]"

// Secret is a value that must never be logged: its LogValue is
// Redacted, whichever handler formats it.
type Secret string

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// secretNames are the attribute names (or parts of them, lower case)
// whose values are secrets: credentials, pairing and invitation codes
// and secrets, setup payloads (they carry the pairing secret), Wi-Fi
// passwords, keys.
var secretNames = []string{
	"token", "secret", "password", "passwd", "passphrase", "psk", "authorization", "cookie",
	"credential", "private", "payload", "proof", "invite_code", "invitation_code", "pairing_code", "setup_code",
}

// secretName reports whether an attribute called key holds a secret.
// "code" alone (a pairing or invitation code) is one; exit_code and
// status codes are numbers, and numbers are kept.
func secretName(key string) bool {
	k := strings.ToLower(key)
	if k == "code" {
		return true
	}
	for _, s := range secretNames {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// Redact wraps h so that no secret reaches it: the values of attributes
// whose name says they are secret (secretNames), of type Secret, and
// byte slices (raw keys and nonces) are replaced by Redacted. Numbers,
// booleans, times and durations are kept whatever their name.
func Redact(h slog.Handler) slog.Handler { return redactor{h} }

type redactor struct{ h slog.Handler }

func (r redactor) Enabled(ctx context.Context, l slog.Level) bool { return r.h.Enabled(ctx, l) }

func (r redactor) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, rec.Message, rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redact(a))
		return true
	})
	return r.h.Handle(ctx, out)
}

func (r redactor) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = redact(a)
	}
	return redactor{r.h.WithAttrs(red)}
}

func (r redactor) WithGroup(name string) slog.Handler { return redactor{r.h.WithGroup(name)} }

func redact(a slog.Attr) slog.Attr {
	v := a.Value.Resolve() // a Secret resolves to Redacted here
	switch v.Kind() {
	case slog.KindGroup:
		g := v.Group()
		red := make([]slog.Attr, len(g))
		for i, ga := range g {
			red[i] = redact(ga)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(red...)}
	case slog.KindInt64, slog.KindUint64, slog.KindFloat64, slog.KindBool, slog.KindDuration, slog.KindTime:
		return slog.Attr{Key: a.Key, Value: v}
	case slog.KindAny:
		if _, ok := v.Any().([]byte); ok {
			return slog.String(a.Key, Redacted)
		}
	}
	if secretName(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// Tee sends each record to every handler that is enabled for its level.
func Tee(hs ...slog.Handler) slog.Handler { return tee(hs) }

type tee []slog.Handler

func (t tee) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range t {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (t tee) Handle(ctx context.Context, rec slog.Record) error {
	var errs []error
	for _, h := range t {
		if h.Enabled(ctx, rec.Level) {
			errs = append(errs, h.Handle(ctx, rec.Clone()))
		}
	}
	return errors.Join(errs...)
}

func (t tee) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(tee, len(t))
	for i, h := range t {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (t tee) WithGroup(name string) slog.Handler {
	out := make(tee, len(t))
	for i, h := range t {
		out[i] = h.WithGroup(name)
	}
	return out
}
