package whep

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/pion/logging"
)

// pionLogs routes pion's logs into slog. pion's errors and warnings are
// about one connection, so they go out at debug level with their scope;
// camd logs what matters to the owner itself.
//
// pion asks for a logger for each of a connection's parts (ICE, DTLS,
// SRTP, each sender and receiver...), a dozen per viewer, and a slog
// logger with an attribute copies its handler's state: the loggers are
// made once per scope and shared by every connection (they carry no
// connection of their own).
type pionLogs struct {
	log    *slog.Logger
	scopes sync.Map // scope → pionLogger
}

func newPionLogs(log *slog.Logger) *pionLogs {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &pionLogs{log: log}
}

func (p *pionLogs) NewLogger(scope string) logging.LeveledLogger {
	if l, ok := p.scopes.Load(scope); ok {
		return l.(pionLogger)
	}
	l, _ := p.scopes.LoadOrStore(scope, pionLogger{log: p.log.With("pion", scope)})
	return l.(pionLogger)
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) logf(level slog.Level, format string, args ...any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
}

func (l pionLogger) Trace(string)              {}
func (l pionLogger) Tracef(string, ...any)     {}
func (l pionLogger) Debug(msg string)          { l.logf(slog.LevelDebug-4, "%s", msg) }
func (l pionLogger) Debugf(f string, a ...any) { l.logf(slog.LevelDebug-4, f, a...) }
func (l pionLogger) Info(msg string)           { l.logf(slog.LevelDebug-4, "%s", msg) }
func (l pionLogger) Infof(f string, a ...any)  { l.logf(slog.LevelDebug-4, f, a...) }
func (l pionLogger) Warn(msg string)           { l.logf(slog.LevelDebug, "%s", msg) }
func (l pionLogger) Warnf(f string, a ...any)  { l.logf(slog.LevelDebug, f, a...) }
func (l pionLogger) Error(msg string)          { l.logf(slog.LevelDebug, "%s", msg) }
func (l pionLogger) Errorf(f string, a ...any) { l.logf(slog.LevelDebug, f, a...) }
