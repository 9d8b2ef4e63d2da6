package device

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/camd-project/camd/device/crash"
	"github.com/camd-project/camd/device/metrics"
	"github.com/camd-project/camd/device/settings"
	"github.com/camd-project/camd/internal/logring"
	"github.com/camd-project/camd/storage/eventlog"
)

// logsDir holds the log ring (internal/logring) in the data directory.
const logsDir = "logs"

// openLog opens the log ring in the data directory and returns the
// daemon's logger: every record goes, with its secrets redacted, to
// base (the init system's log) and to the ring, at the configured level.
// before is the last line of the runs before this one.
func openLog(cfg Config, base *slog.Logger) (ring *logring.Ring, log *slog.Logger, before uint64, err error) {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(cfg.LogLevel))
	ring, err = logring.Open(filepath.Join(cfg.Data, logsDir), logring.Options{Size: cfg.Log.RingSize, Level: lvl})
	if err != nil {
		return nil, nil, 0, err
	}
	if _, before, err = ring.Read(logring.Query{Limit: 1}); err != nil {
		ring.Close()
		return nil, nil, 0, err
	}
	return ring, slog.New(logring.Redact(logring.Tee(base.Handler(), ring.Handler()))), before, nil
}

// crashEvents is where the crash.recorded event goes: the event log
// today, the event model's publisher once it exists.
type crashEvents interface {
	Add(e eventlog.Event) (uint64, error)
}

// openCrashes turns the previous run's trace, if it crashed, into a
// crash report (crash_reports), with the log's last lines before this
// run's (through the line numbered before).
func openCrashes(cfg Config, ring *logring.Ring, before uint64, events crashEvents, log *slog.Logger) (*crash.Reports, error) {
	client, err := httpsClient(cfg.CrashReportsCAFile, "crash_reports_ca_file")
	if err != nil {
		return nil, err
	}
	return crash.Open(crash.Options{
		Dir: cfg.Data, Mode: cfg.CrashReports, URL: cfg.CrashReportsURL, Client: client,
		Version: Version, Events: events, Logger: log,
		LogBefore: func(n int) []json.RawMessage {
			es, _, err := ring.Read(logring.Query{Through: before, Limit: n, Level: slog.LevelDebug})
			if err != nil || before == 0 {
				return nil
			}
			lines := make([]json.RawMessage, len(es))
			for i, e := range es {
				lines[i] = e.Line
			}
			return lines
		},
	})
}

// crashSettingChanged applies the owner's crash_reports setting.
func crashSettingChanged(r *crash.Reports) func(before, after settings.Settings) {
	return func(before, after settings.Settings) {
		if before.CrashReports != after.CrashReports {
			r.SetMode(after.CrashReports)
		}
	}
}

// httpsClient is a client for an https server camd reaches out to (the
// update feed, the crash collector), trusting the PEM certificates of
// caFile beside the system's; field names caFile in errors.
func httpsClient(caFile, field string) (*http.Client, error) {
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment, TLSHandshakeTimeout: 20 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second, ForceAttemptHTTP2: true,
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrConfig, field, err)
		}
		roots, err := x509.SystemCertPool()
		if err != nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, badValue(field, caFile, "a file of PEM certificates")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr}, nil
}

// newMetrics answers GET /metrics from the components' own counters,
// read at each scrape.
func (d *Daemon) newMetrics() http.Handler {
	rs := d.recording
	return metrics.Handler(metrics.Sources{
		Hub: d.hub, Viewers: d.whep, Store: rs.store, Recorder: rs.rec, Pairing: d.pairing,
		Discovery: d.discovery.answers, Sinks: d.sinkStats,
		Cameras: d.nvr.stats,
	})
}

// sinkStats is the counters of the sinks that carry events off the
// device: Web Push and webhooks always (they send nothing until a user
// subscribes or the owner adds a hook), MQTT when it is on.
func (d *Daemon) sinkStats() []metrics.SinkStats {
	p, h := d.notify.push.Stats(), d.notify.hooks.Stats()
	out := []metrics.SinkStats{
		{Sink: "webpush", Delivered: p.Delivered, Failed: p.Failed, Dropped: p.Dropped, Queued: p.Queued},
		{Sink: "webhooks", Delivered: h.Delivered, Failed: h.Failed, Dropped: h.Dropped, Queued: h.Queued},
	}
	if m, ok := d.mqtt.stats(); ok {
		out = append(out, metrics.SinkStats{Sink: "mqtt", Delivered: m.Delivered, Failed: m.Failed, Dropped: m.Dropped, Queued: m.Queued})
	}
	return out
}
