package device

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/camd-project/camd/device/mqtt"
	"github.com/camd-project/camd/internal/durable"
	"github.com/camd-project/camd/storage"
)

// mqttMarker, in the data directory, says that camd published to the
// configured broker: turning MQTT off then removes what it published.
const mqttMarker = "mqtt-published"

func (m MQTTConfig) validate() error {
	if m.Password != "" && m.PasswordFile != "" {
		return badValue("mqtt.password_file", strconv.Quote(m.PasswordFile), "either password or password_file, not both")
	}
	if m.Broker == "" {
		if m.Enabled {
			return badValue("mqtt.broker", `""`, "mqtt://HOST[:PORT] or mqtts://HOST[:PORT] when mqtt.enabled is true")
		}
		return nil
	}
	if err := mqtt.Check(m.options("check", "")); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// options are the client's options for the device deviceID, without the
// password (mqttState reads it).
func (m MQTTConfig) options(deviceID, password string) mqtt.Options {
	return mqtt.Options{
		Broker: m.Broker, Username: m.Username, Password: password,
		CAFile: m.CAFile, PinSHA256: m.PinSHA256, DeviceID: deviceID, Version: Version,
		TopicPrefix: m.TopicPrefix, DiscoveryPrefix: m.DiscoveryPrefix,
	}
}

// mqttState is the MQTT client when the owner turned it on, or what
// removes what camd published once the owner turned it off.
type mqttState struct {
	client *mqtt.Client  // nil: off
	remove *mqtt.Options // off, after publishing: removed at start
	deps   mqtt.Deps
	marker string
	log    *slog.Logger
}

// openMQTT builds the MQTT client from the configuration: nil when MQTT
// is off and nothing is left to remove.
func openMQTT(cfg Config, deviceID string, cat *storage.Catalog, es *eventState, ss *settingsState, rs *recordingState, log *slog.Logger) (*mqttState, error) {
	m := cfg.MQTT
	marker := filepath.Join(cfg.Data, mqttMarker)
	_, err := os.Stat(marker)
	published := err == nil
	if m.Broker == "" || (!m.Enabled && !published) {
		return nil, nil
	}
	password := m.Password
	if m.PasswordFile != "" {
		b, err := os.ReadFile(m.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("device: mqtt.password_file: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	opts := m.options(deviceID, password)
	opts.Logger = log
	st := &mqttState{marker: marker, log: log, deps: mqtt.Deps{
		Bus: es.bus, History: es.log, Catalog: cat, Settings: ss,
		Status: func() mqtt.Status { return recordingStatus(rs, ss.Get().RecordingMode) },
	}}
	if cfg.Source != "passthrough" || len(cfg.Passthrough.SnapshotCommand) > 0 {
		st.deps.Stills = rs.stills
	}
	if !m.Enabled {
		st.remove = &opts
		return st, nil
	}
	if st.client, err = mqtt.New(opts, st.deps); err != nil {
		return nil, err
	}
	return st, nil
}

// recordingStatus is what the storage and recording sensors show.
func recordingStatus(rs *recordingState, mode string) mqtt.Status {
	st := rs.store.Stats()
	out := mqtt.Status{UsedBytes: st.Bytes, FreeBytes: st.FreeBytes}
	switch {
	case mode == "off":
		out.Recording = "off"
	case st.Paused != "":
		out.Recording = "paused"
	case rs.rec.Stats().Recording:
		out.Recording = "recording"
	default:
		out.Recording = "idle"
	}
	return out
}

// run publishes until ctx ends, or removes what was published.
func (m *mqttState) run(ctx context.Context) {
	if m.client != nil {
		if err := durable.WriteFile(m.marker, []byte("camd publishes to the MQTT broker of its configuration\n"), 0o600); err != nil {
			m.log.Warn("camd: mqtt: cannot keep the mark that removes the discovery configs when MQTT is turned off", "err", err)
		}
		if err := m.client.Run(ctx); err != nil {
			m.log.Warn("camd: mqtt stopped", "err", err)
		}
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := mqtt.Remove(rctx, *m.remove, m.deps); err != nil {
		m.log.Warn("camd: mqtt is off; could not remove what camd published (tried again at the next start)", "err", err)
		return
	}
	if err := os.Remove(m.marker); err != nil && !errors.Is(err, fs.ErrNotExist) {
		m.log.Warn("camd: mqtt", "err", err)
	}
	m.log.Info("camd: mqtt is off; removed the discovery configs and retained states from the broker")
}

// stats is the client's counters; none when MQTT is off.
func (m *mqttState) stats() (mqtt.Stats, bool) {
	if m == nil || m.client == nil {
		return mqtt.Stats{}, false
	}
	return m.client.Stats(), true
}

// forget makes a running client remove what it published as it stops
// (a factory reset).
func (m *mqttState) forget() {
	if m != nil && m.client != nil {
		m.client.Forget()
	}
}
