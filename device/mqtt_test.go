package device

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/device/mqtt"
	"github.com/camd-project/camd/device/mqtt/mqtttest"
	"github.com/camd-project/camd/device/settings"
	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/storage/eventlog"
)

const mqttPassword = "camd-mqtt-Pa55word-4f1b"

// mqttDaemon runs camd on the configuration with MQTT on, to a broker
// that needs a password (in a file), with its log kept in logBuf.
func mqttDaemon(t *testing.T, b *mqtttest.Broker, cfg Config, logBuf *testenv.Buffer) (*Daemon, <-chan error, context.CancelFunc) {
	t.Helper()
	pw := filepath.Join(t.TempDir(), "mqtt-password")
	os.WriteFile(pw, []byte(mqttPassword+"\n"), 0o600)
	cfg.MQTT = MQTTConfig{Enabled: true, Broker: b.URL, Username: "camera", PasswordFile: pw, TopicPrefix: "camd", DiscoveryPrefix: "homeassistant"}
	d, err := New(cfg, slog.New(slog.NewTextHandler(logBuf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() { done <- d.Run(ctx); close(finished) }()
	t.Cleanup(func() { cancel(); <-finished })
	return d, done, cancel
}

// camd with MQTT on: Home Assistant's commands change the settings as
// the owner's PATCH does (seen through the API, the event says "mqtt"),
// the API's motion reaches the broker, a factory reset takes the device
// out of Home Assistant, and the password never reaches the log.
func TestMQTTWithHomeAssistant(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{Users: map[string]string{"camera": mqttPassword, "ha": "ha-pw"}})
	logBuf := &testenv.Buffer{}
	cfg := passthroughConfig(t)
	d, done, _ := mqttDaemon(t, b, cfg, logBuf)
	node := mqtt.NodeID(d.id.ID)
	topic := func(level string) string { return "camd/" + node + "/" + level }
	is := func(s string) func(mqtttest.Message) bool {
		return func(m mqtttest.Message) bool { return string(m.Payload) == s }
	}
	sub := b.Subscribe(mqtttest.Login{User: "ha", Password: "ha-pw"}, "camd/#", "homeassistant/#")
	sub.Wait(topic("availability"), is("online"))
	cfgTopic := "homeassistant/switch/" + node + "/mute/config"
	m := sub.Wait(cfgTopic, nil)
	var disc map[string]any
	if err := json.Unmarshal(m.Payload, &disc); err != nil || disc["command_topic"] != topic("mute/set") {
		t.Fatalf("mute's config: %v %s", err, m.Payload)
	}
	tok := owner(t, d)

	// A command from Home Assistant.
	sub.Wait(topic("mute"), is("OFF"))
	sub.Publish(topic("mute/set"), false, "ON")
	sub.Wait(topic("mute"), is("ON"))
	code, body := call(t, d, "GET", "/api/v1/settings", tok, nil)
	var s settings.Settings
	if err := json.Unmarshal(body, &s); code != 200 || err != nil || !s.Mute {
		t.Fatalf("settings after the command: %d %s", code, body)
	}
	code, body = call(t, d, "GET", "/api/v1/events?type=settings.changed", tok, nil)
	var page []eventlog.Event
	if err := json.Unmarshal(body, &page); code != 200 || err != nil || len(page) != 1 ||
		page[0].Data["by"] != "mqtt" || page[0].Data["keys"] != "mute" {
		t.Fatalf("settings.changed: %d %s", code, body)
	}
	// The owner's PATCH shows in Home Assistant.
	if code, out := patchSettings(t, d, tok, "application/json", `{"night_mode": "night"}`); code != 200 {
		t.Fatalf("PATCH: %d %v", code, out)
	}
	sub.Wait(topic("night_mode"), is("night"))

	// Motion from the API.
	if code, b := call(t, d, "POST", "/api/v1/motion", tok, api.MotionTrigger{Cause: "test", Seconds: 0.2}); code != 200 {
		t.Fatalf("motion: %d %s", code, b)
	}
	sub.Wait(topic("motion"), is("ON"))
	sub.Wait(topic("events"), func(m mqtttest.Message) bool { return bytes.Contains(m.Payload, []byte(`"type":"motion"`)) })
	sub.Wait(topic("motion"), is("OFF"))
	// Counted in the metrics: the settings changes and the motion.
	waitMetric(t, d, tok, 3, "camd_events_delivered_total", "sink", "mqtt")

	// A factory reset removes the device from Home Assistant.
	d.reset.request()
	if err := <-done; !errors.Is(err, ErrFactoryReset) {
		t.Fatalf("Run: %v", err)
	}
	sub.Wait(cfgTopic, is(""))
	sub.Wait(topic("availability"), is(""))
	if _, err := os.Stat(filepath.Join(cfg.Data, mqttMarker)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the mark survived the reset: %v", err)
	}
	log := logBuf.String()
	if strings.Contains(log, mqttPassword) || !strings.Contains(log, "mqtt: connected") {
		t.Fatalf("log:\n%s", log)
	}
}

// Turning MQTT off (enabled: false, the broker kept) removes what camd
// published at the next start, once; with MQTT never on, camd connects
// to nothing.
func TestMQTTTurnedOffRemovesDiscovery(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{Users: map[string]string{"camera": mqttPassword, "ha": "ha-pw"}})
	cfg := passthroughConfig(t)
	logBuf := &testenv.Buffer{}
	d, done, cancel := mqttDaemon(t, b, cfg, logBuf)
	node := mqtt.NodeID(d.id.ID)
	sub := b.Subscribe(mqtttest.Login{User: "ha", Password: "ha-pw"}, "camd/#", "homeassistant/#")
	cfgTopic := "homeassistant/camera/" + node + "/camera/config"
	sub.Wait(cfgTopic, nil)
	cancel()
	<-done

	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte(mqttPassword), 0o600)
	cfg.MQTT = MQTTConfig{Enabled: false, Broker: b.URL, Username: "camera", PasswordFile: pw, TopicPrefix: "camd", DiscoveryPrefix: "homeassistant"}
	running(t, func(c *Config) { *c = cfg })
	sub.Wait(cfgTopic, func(m mqtttest.Message) bool { return len(m.Payload) == 0 })
	sub.Wait("camd/"+node+"/availability", func(m mqtttest.Message) bool { return len(m.Payload) == 0 })
}

func TestMQTTConfig(t *testing.T) {
	for _, c := range []struct {
		m    MQTTConfig
		want string
	}{
		{MQTTConfig{Enabled: true}, "mqtt.broker"},
		{MQTTConfig{Enabled: true, Broker: "http://x"}, "broker scheme"},
		{MQTTConfig{Enabled: true, Broker: "mqtt://u:pw@x"}, "user information"},
		{MQTTConfig{Enabled: true, Broker: "mqtt://x", Password: "a", PasswordFile: "/b"}, "mqtt.password_file"},
		{MQTTConfig{Enabled: true, Broker: "mqtt://x", CAFile: "/etc/hosts"}, "mqtts://"},
		{MQTTConfig{Enabled: true, Broker: "mqtts://x", PinSHA256: "12"}, "pin_sha256"},
	} {
		cfg := testConfig(t)
		cfg.MQTT = c.m
		err := cfg.Validate()
		if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "pw") {
			t.Errorf("%+v: %v", c.m, err)
		}
	}
	cfg := testConfig(t)
	if err := cfg.Validate(); err != nil || cfg.MQTT.Enabled {
		t.Fatalf("default: %v %+v", err, cfg.MQTT)
	}
	// Off by default: no client, nothing leaves the device.
	if d := running(t); d.mqtt != nil {
		t.Fatal("an MQTT client was built without a broker")
	}
	if d := running(t, func(c *Config) { c.MQTT.Broker = "mqtt://192.0.2.1" }); d.mqtt != nil {
		t.Fatal("an MQTT client was built with MQTT not enabled")
	}
}
