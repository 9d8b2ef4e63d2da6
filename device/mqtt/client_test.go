package mqtt_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/device/mqtt"
	"github.com/camd-project/camd/device/mqtt/mqtttest"
	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/device/settings"
	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/storage"
	"github.com/camd-project/camd/storage/eventlog"
)

const deviceID = "ABCDEFGH234567QRSTUVWXYZ23"

// settingsStore is the daemon's settings path in small: the catalog's
// store, and who changed what.
type settingsStore struct {
	*settings.Store
	cat     *storage.Catalog
	mu      sync.Mutex
	by      []string
	changed chan []string // the keys of each Change
}

func (s *settingsStore) Change(patch map[string]json.RawMessage, by pairing.User) (settings.Settings, error) {
	before, after, err := s.Patch(patch)
	if err != nil {
		return before, err
	}
	s.mu.Lock()
	s.by = append(s.by, by.ID)
	s.mu.Unlock()
	s.changed <- settings.Changed(before, after)
	return after, nil
}

func openSettings(t *testing.T) *settingsStore {
	t.Helper()
	cat, err := storage.OpenCatalog(filepath.Join(t.TempDir(), "catalog.db"), storage.CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	st, err := settings.Open(cat, settings.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &settingsStore{Store: st, cat: cat, changed: make(chan []string, 16)}
}

// stills hands out a small JPEG.
type stills struct{}

func (stills) JPEG(context.Context, int) ([]byte, time.Time, error) {
	img := image.NewGray(image.Rect(0, 0, 32, 24))
	for i := range img.Pix {
		img.Pix[i] = uint8(i)
	}
	img.Set(1, 1, color.White)
	var b bytes.Buffer
	jpeg.Encode(&b, img, nil)
	return b.Bytes(), time.Now(), nil
}

type rig struct {
	t      testing.TB
	bus    *events.Bus
	events *eventlog.Log
	set    *settingsStore
	log    *testenv.Buffer
	client *mqtt.Client
	stop   func() // ends Run and waits for it
}

// start runs a Client against b with opts on top of the rig's.
func start(t *testing.T, b *mqtttest.Broker, opts mqtt.Options) *rig {
	t.Helper()
	return startOn(t, b, openSettings(t), opts)
}

// startOn is start on the catalog of set: a second start resumes from
// the cursor the first kept.
func startOn(t *testing.T, b *mqtttest.Broker, set *settingsStore, opts mqtt.Options) *rig {
	t.Helper()
	bus := events.New(events.Options{})
	t.Cleanup(bus.Close)
	r := &rig{t: t, bus: bus, set: set, log: &testenv.Buffer{},
		events: eventlog.New(set.cat, eventlog.Options{Notify: bus.Publish})}
	opts.Broker = b.URL
	opts.DeviceID = deviceID
	opts.Version = "test"
	opts.MaxReconnectInterval = 200 * time.Millisecond
	opts.RetryInterval = 200 * time.Millisecond
	opts.Logger = slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := mqtt.New(opts, mqtt.Deps{
		Bus: r.bus, History: r.events, Catalog: set.cat, Settings: r.set, Stills: stills{},
		Status: func() mqtt.Status { return mqtt.Status{UsedBytes: 1 << 30, FreeBytes: 5 << 30, Recording: "recording"} },
	})
	if err != nil {
		t.Fatal(err)
	}
	r.client = c
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	stopped := false
	r.stop = func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(r.stop)
	return r
}

// publish adds an event of kind to the log, which tells the bus.
func (r *rig) publish(kind string) uint64 {
	return r.publishAt(kind, time.Now())
}

func (r *rig) publishAt(kind string, at time.Time) uint64 {
	id, err := r.events.Add(eventlog.Event{Kind: kind, Time: at, Message: kind, Camera: deviceID})
	if err != nil {
		r.t.Fatal(err)
	}
	return id
}

var node = mqtt.NodeID(deviceID)

func topic(level string) string { return "camd/" + node + "/" + level }

func payload(s string) func(mqtttest.Message) bool {
	return func(m mqtttest.Message) bool { return string(m.Payload) == s }
}

// entity is what Home Assistant needs of each discovery config, by
// platform (its MQTT integration's documented required fields).
var required = map[string][]string{
	"camera":        {"topic"},
	"binary_sensor": {"state_topic"},
	"event":         {"state_topic", "event_types"},
	"sensor":        {"state_topic"},
	"switch":        {"command_topic"},
	"select":        {"command_topic", "options"},
}

var configs = []string{
	"camera/" + node + "/camera", "binary_sensor/" + node + "/motion", "event/" + node + "/doorbell",
	"sensor/" + node + "/storage_used", "sensor/" + node + "/storage_free", "sensor/" + node + "/recording",
	"switch/" + node + "/mute", "switch/" + node + "/status_led",
	"select/" + node + "/night_mode", "select/" + node + "/recording_mode",
}

func TestDiscoveryAndEvents(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	sub := b.Subscribe(mqtttest.Login{}, "homeassistant/#", "camd/#")
	r := start(t, b, mqtt.Options{})

	sub.Wait(topic("availability"), payload("online"))
	uniques := map[string]bool{}
	for _, c := range configs {
		m := sub.Wait("homeassistant/"+c+"/config", nil)
		if !m.Retained {
			// A subscriber that came before gets it live; a retained
			// copy is what Home Assistant reads after a restart.
			late := b.Subscribe(mqtttest.Login{}, "homeassistant/"+c+"/config")
			m = late.Wait("homeassistant/"+c+"/config", nil)
			if !m.Retained {
				t.Errorf("%s: not retained", c)
			}
		}
		var cfg map[string]any
		if err := json.Unmarshal(m.Payload, &cfg); err != nil {
			t.Fatalf("%s: %v: %s", c, err, m.Payload)
		}
		component := strings.Split(c, "/")[0]
		for _, f := range append([]string{"name", "unique_id", "availability_topic", "device"}, required[component]...) {
			if cfg[f] == nil || cfg[f] == "" {
				t.Errorf("%s: no %s: %s", c, f, m.Payload)
			}
		}
		if uniques[cfg["unique_id"].(string)] {
			t.Errorf("%s: unique_id %v used twice", c, cfg["unique_id"])
		}
		uniques[cfg["unique_id"].(string)] = true
		dev, _ := cfg["device"].(map[string]any)
		if ids, _ := dev["identifiers"].([]any); len(ids) != 1 || ids[0] != node || dev["name"] != "camd" {
			t.Errorf("%s: device %v", c, dev)
		}
		if cfg["availability_topic"] != topic("availability") {
			t.Errorf("%s: availability_topic %v", c, cfg["availability_topic"])
		}
		for _, k := range []string{"topic", "state_topic", "command_topic"} {
			if v, ok := cfg[k].(string); ok && !strings.HasPrefix(v, "camd/"+node+"/") {
				t.Errorf("%s: %s %q outside camd's topics", c, k, v)
			}
		}
		switch component {
		case "event":
			if types, _ := cfg["event_types"].([]any); !slices.Equal(types, []any{"press"}) || cfg["device_class"] != "doorbell" {
				t.Errorf("doorbell event: %s", m.Payload)
			}
		case "binary_sensor":
			if cfg["device_class"] != "motion" || cfg["payload_on"] != "ON" || cfg["payload_off"] != "OFF" {
				t.Errorf("motion: %s", m.Payload)
			}
		case "select":
			if opts, _ := cfg["options"].([]any); len(opts) != 3 {
				t.Errorf("select: %s", m.Payload)
			}
		}
	}
	// The states, retained.
	for level, want := range map[string]string{
		"mute": "OFF", "status_led": "ON", "night_mode": "auto", "recording_mode": "continuous",
		"storage_used": "1073741824", "storage_free": "5368709120", "recording": "recording", "motion": "OFF",
	} {
		sub.Wait(topic(level), payload(want))
	}

	// Motion: the event's JSON, the binary sensor, a picture.
	sub.Forget()
	id := r.publish(events.Motion)
	m := sub.Wait(topic("events"), nil)
	var e eventlog.Event
	if err := json.Unmarshal(m.Payload, &e); err != nil || e.ID != id || e.Kind != events.Motion {
		t.Fatalf("event: %v %s", err, m.Payload)
	}
	sub.Wait(topic("motion"), payload("ON"))
	pic := sub.Wait(topic("snapshot"), nil)
	if _, err := jpeg.Decode(bytes.NewReader(pic.Payload)); err != nil || !bytes.HasPrefix(pic.Payload, []byte{0xff, 0xd8}) {
		t.Fatalf("snapshot is not a JPEG: %v", err)
	}
	r.publish(events.MotionEnd)
	sub.Wait(topic("motion"), payload("OFF"))

	// The doorbell.
	id = r.publish(events.DoorbellPressed)
	m = sub.Wait(topic("doorbell"), nil)
	var press map[string]any
	if err := json.Unmarshal(m.Payload, &press); err != nil || press["event_type"] != "press" || press["event_id"] != float64(id) {
		t.Fatalf("doorbell: %v %s", err, m.Payload)
	}

	// Users' events stay on the device.
	r.publish(events.UserPaired)
	last := r.publish(events.RecordingPaused)
	m = sub.Wait(topic("events"), func(m mqtttest.Message) bool { return bytes.Contains(m.Payload, []byte(events.RecordingPaused)) })
	json.Unmarshal(m.Payload, &e)
	if e.ID != last {
		t.Fatalf("got %s", m.Payload)
	}
	if _, ok := sub.WaitFor(topic("events"), 0, func(m mqtttest.Message) bool { return bytes.Contains(m.Payload, []byte(events.UserPaired)) }); ok {
		t.Error("a user.paired event was published")
	}

	// Stopping says offline.
	r.stop()
	sub.Wait(topic("availability"), payload("offline"))
}

func TestCommandsChangeSettings(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	sub := b.Subscribe(mqtttest.Login{}, "camd/#")
	// A retained command would be applied again at each connection:
	// it is ignored.
	sub.Publish(topic("mute/set"), true, "ON")
	r := start(t, b, mqtt.Options{})
	sub.Wait(topic("availability"), payload("online"))
	sub.Wait(topic("mute"), payload("OFF"))

	for _, c := range []struct {
		object, value string
		check         func(settings.Settings) bool
	}{
		{"mute", "ON", func(s settings.Settings) bool { return s.Mute }},
		{"status_led", "OFF", func(s settings.Settings) bool { return !s.StatusLED }},
		{"night_mode", "night", func(s settings.Settings) bool { return s.NightMode == "night" }},
		{"recording_mode", "motion", func(s settings.Settings) bool { return s.RecordingMode == "motion" }},
	} {
		sub.Publish(topic(c.object+"/set"), false, c.value)
		if keys := <-r.set.changed; !slices.Equal(keys, []string{c.object}) {
			t.Fatalf("%s: changed %v", c.object, keys)
		}
		if !c.check(r.set.Get()) {
			t.Fatalf("%s=%s: settings %+v", c.object, c.value, r.set.Get())
		}
		// The state follows.
		sub.Wait(topic(c.object), payload(c.value))
	}
	if r.set.by[0] != "mqtt" {
		t.Errorf("changed by %v", r.set.by)
	}

	// Values of the wrong type and unknown entities are ignored with a log line. Commands are handled in order: the
	// good one after them shows they were handled.
	before := r.set.Get()
	sub.Publish(topic("mute/set"), false, "maybe")
	sub.Publish(topic("night_mode/set"), false, "dusk")
	sub.Publish(topic("recording_mode/set"), false, `"off"`)
	sub.Publish(topic("resolution/set"), false, "16x16")
	sub.Publish(topic("status_led/set"), false, "")
	sub.Publish(topic("mute/set"), false, "OFF")
	if keys := <-r.set.changed; !slices.Equal(keys, []string{"mute"}) {
		t.Fatalf("changed %v", keys)
	}
	after := r.set.Get()
	after.Mute = before.Mute
	if after != before {
		t.Errorf("ignored commands changed settings: %+v, was %+v", after, before)
	}
	log := r.log.String()
	for _, want := range []string{
		`msg="mqtt: command ignored: not a value the entity takes" topic=camd/` + node + `/mute/set payload="\"maybe\""`,
		`topic=camd/` + node + `/night_mode/set payload="\"dusk\"" allowed="auto, day, night"`,
		`topic=camd/` + node + `/recording_mode/set payload="\"\\\"off\\\"\""`,
		`msg="mqtt: command for no entity ignored" topic=camd/` + node + `/resolution/set`,
		`msg="mqtt: retained command ignored" topic=camd/` + node + `/mute/set`,
		`topic=camd/` + node + `/status_led/set payload="\"\""`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
}

func TestReconnectsAfterBrokerRestart(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	sub := b.Subscribe(mqtttest.Login{}, "camd/#")
	r := start(t, b, mqtt.Options{})
	sub.Wait(topic("availability"), payload("online"))

	b.Restart() // keeps nothing: camd must publish again
	sub = b.Subscribe(mqtttest.Login{}, "camd/#", "homeassistant/#")
	sub.Wait(topic("availability"), payload("online"))
	sub.Wait("homeassistant/switch/"+node+"/mute/config", nil)
	if !strings.Contains(r.log.String(), "mqtt: connection lost; reconnecting") {
		t.Errorf("log: %s", r.log)
	}
	// And events flow again.
	id := r.publish(events.Motion)
	sub.Wait(topic("events"), func(m mqtttest.Message) bool {
		var e eventlog.Event
		return json.Unmarshal(m.Payload, &e) == nil && e.ID == id
	})
}

func TestTLSAndPassword(t *testing.T) {
	const user, password = "camera", "s3cret-Pa55word-never-logged"
	b := mqtttest.Start(t, mqtttest.Options{TLS: true, Users: map[string]string{user: password, "ha": "ha-password"}})
	for _, c := range []struct {
		name string
		opts mqtt.Options
	}{
		{"ca file", mqtt.Options{CAFile: b.CAFile}},
		{"pinned certificate", mqtt.Options{PinSHA256: b.CertSHA256}},
	} {
		t.Run(c.name, func(t *testing.T) {
			sub := b.Subscribe(mqtttest.Login{User: "ha", Password: "ha-password"}, "camd/#")
			c.opts.Username, c.opts.Password = user, password
			r := start(t, b, c.opts)
			sub.Wait(topic("availability"), payload("online"))
			r.publish(events.Motion)
			sub.Wait(topic("motion"), payload("ON"))
			r.stop()
			sub.Wait(topic("availability"), payload("offline"))
			if log := r.log.String(); strings.Contains(log, password) || !strings.Contains(log, "mqtt: connected") {
				t.Errorf("log:\n%s", log)
			}
		})
	}
}

func TestBadOptions(t *testing.T) {
	for _, o := range []mqtt.Options{
		{Broker: "http://127.0.0.1:1883"},
		{Broker: "mqtt://user:secret@127.0.0.1"},
		{Broker: "127.0.0.1:1883"},
		{Broker: "mqtt://127.0.0.1", CAFile: "/etc/hosts"},
		{Broker: "mqtts://127.0.0.1", PinSHA256: "abcd"},
		{Broker: "mqtts://127.0.0.1", CAFile: "/nonexistent"},
		{Broker: "mqtt://127.0.0.1", TopicPrefix: "a/#"},
	} {
		o.DeviceID = deviceID
		err := mqtt.Check(o)
		if err == nil {
			t.Errorf("%+v: accepted", o)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("error quotes the password: %v", err)
		}
	}
}

// A factory reset (Forget) and turning MQTT off (Remove) take camd's
// device out of Home Assistant: the retained configs, states and
// picture are cleared.
func TestForgetAndRemoveClearDiscovery(t *testing.T) {
	for _, how := range []string{"forget", "remove"} {
		t.Run(how, func(t *testing.T) {
			b := mqtttest.Start(t, mqtttest.Options{})
			r := start(t, b, mqtt.Options{})
			sub := b.Subscribe(mqtttest.Login{}, "camd/#", "homeassistant/#")
			sub.Wait(topic("availability"), payload("online"))
			for _, c := range configs {
				sub.Wait("homeassistant/"+c+"/config", nil)
			}
			sub.Wait(topic("snapshot"), nil)
			switch how {
			case "forget":
				r.client.Forget()
				r.stop()
			case "remove":
				r.stop()
				err := mqtt.Remove(context.Background(), mqtt.Options{Broker: b.URL, DeviceID: deviceID},
					mqtt.Deps{Bus: r.bus, History: r.events, Catalog: r.set.cat, Settings: r.set, Status: func() mqtt.Status { return mqtt.Status{} }})
				if err != nil {
					t.Fatal(err)
				}
			}
			for _, c := range configs {
				sub.Wait("homeassistant/"+c+"/config", payload(""))
			}
			// A newcomer (Home Assistant starting) finds nothing retained.
			late := b.Subscribe(mqtttest.Login{}, "camd/#", "homeassistant/#")
			late.Publish("camd/marker", false, "x")
			late.Wait("camd/marker", nil)
			if got := late.Topics(); got != "[camd/marker×1]" {
				t.Errorf("retained after %s: %s", how, got)
			}
		})
	}
}

// A broker that is not there: Run keeps trying, and stops at once when
// asked.
func TestStopsWhileBrokerIsDown(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	b.Stop()
	r := start(t, b, mqtt.Options{})
	r.publish(events.Motion) // nowhere to go: dropped, not queued forever
	done := make(chan struct{})
	go func() { r.stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop while the broker was down")
	}
}

// eventIDs reads the next n events published on the events topic from
// sub, in the order the broker delivered them, skipping those in seen
// (the broker delivers at least once too: a QoS 1 message the
// subscriber took just as the broker stopped comes again) and adding
// the new ones to it.
func eventIDs(t *testing.T, sub *mqtttest.Subscriber, seen map[uint64]bool, n int) []uint64 {
	t.Helper()
	var ids []uint64
	deadline := time.After(20 * time.Second)
	for len(ids) < n {
		select {
		case m := <-sub.C:
			if m.Topic != topic("events") {
				continue
			}
			var e eventlog.Event
			if err := json.Unmarshal(m.Payload, &e); err != nil {
				t.Fatalf("event: %v: %s", err, m.Payload)
			}
			if !seen[e.ID] {
				seen[e.ID] = true
				ids = append(ids, e.ID)
			}
		case <-deadline:
			t.Fatalf("%d events of %d came: %v", len(ids), n, ids)
		}
	}
	return ids
}

// waitLog waits until the client's log says s.
func (r *rig) waitLog(s string) {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(r.log.String(), s) {
		if time.Now().After(deadline) {
			r.t.Fatalf("log lacks %q:\n%s", s, r.log)
		}
		time.Sleep(5 * time.Millisecond) // polling a log: no event to wait on
	}
}

// Events that happen while the broker is down, or while camd is
// stopped, are published once both are back, in order, from the cursor
// kept in the catalog; at most MaxReplay of them.
func TestReplaysMissedEvents(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{Persistent: true})
	// Home Assistant's session outlives the broker's restart: what camd
	// publishes while it reconnects is kept for it.
	ha := mqtttest.Login{Session: "ha-replay"}
	sub := b.Subscribe(ha, "camd/#")
	set := openSettings(t)
	r := startOn(t, b, set, mqtt.Options{})
	sub.Wait(topic("availability"), payload("online"))
	seen := map[uint64]bool{}
	first := r.publish(events.Motion)
	if ids := eventIDs(t, sub, seen, 1); ids[0] != first {
		t.Fatalf("live: %v", ids)
	}

	// The broker goes away; camd notices; events happen.
	b.Stop()
	r.waitLog("mqtt: connection lost")
	want := []uint64{
		r.publish(events.MotionEnd),
		r.publishAt(events.DoorbellPressed, time.Now().Add(-time.Minute)), // late: not pressed again
	}
	r.publish(events.UserPaired) // not MQTT's
	want = append(want, r.publish(events.RecordingPaused), r.publishAt(events.Motion, time.Now().Add(-time.Minute)))
	b.Restart()
	sub = b.Subscribe(ha, "camd/#")
	if got := eventIDs(t, sub, seen, len(want)); !slices.Equal(got, want) {
		t.Fatalf("after the broker's restart: events %v, want %v (%+v)", got, want, r.client.Stats())
	}
	// The motion sensor follows the fresh motion.end at once, and the
	// late motion once the client has caught up; the late press is not
	// pressed on the doorbell entity.
	off := sub.Wait(topic("motion"), payload("OFF"))
	sub.Wait(topic("motion"), func(m mqtttest.Message) bool { return string(m.Payload) == "ON" && m.At.After(off.At) })
	if _, ok := sub.Last(topic("doorbell")); ok {
		t.Error("a late doorbell press was pressed again")
	}
	waitStats := func(r *rig, want mqtt.Stats) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for r.client.Stats() != want {
			if time.Now().After(deadline) {
				t.Fatalf("stats %+v, want %+v", r.client.Stats(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	// Each once from camd (what the broker acknowledged).
	waitStats(r, mqtt.Stats{Delivered: 5})

	// camd stops; events happen; camd starts again from its cursor.
	r.stop()
	sub.Forget()
	r2 := startOn(t, b, set, mqtt.Options{})
	want = []uint64{r2.publish(events.MotionEnd), r2.publish(events.RecordingResumed)}
	if got := eventIDs(t, sub, seen, len(want)); !slices.Equal(got, want) {
		t.Fatalf("after camd's restart: events %v, want %v", got, want)
	}
	waitStats(r2, mqtt.Stats{Delivered: 2})

	// Away longer than MaxReplay events: the newest are published, the
	// others counted as dropped.
	r2.stop()
	r3log := []uint64{}
	for range 5 {
		r3log = append(r3log, r2.publish(events.RecordingPaused))
	}
	r3 := startOn(t, b, set, mqtt.Options{MaxReplay: 2})
	if got := eventIDs(t, sub, seen, 2); !slices.Equal(got, r3log[3:]) {
		t.Fatalf("over the bound: events %v, want %v", got, r3log[3:])
	}
	waitStats(r3, mqtt.Stats{Delivered: 2, Dropped: 3})
}

// MQTT turned on for the first time, or again after Remove (turned
// off), publishes nothing from before: the cursor starts at the log's
// newest event.
func TestTurnedOnPublishesNothingOlder(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	set := openSettings(t)
	old := eventlog.New(set.cat, eventlog.Options{})
	for range 3 {
		if _, err := old.Add(eventlog.Event{Kind: events.Motion, Message: "before MQTT"}); err != nil {
			t.Fatal(err)
		}
	}
	sub := b.Subscribe(mqtttest.Login{}, "camd/#")
	seen := map[uint64]bool{}
	for round := range 2 {
		r := startOn(t, b, set, mqtt.Options{})
		sub.Wait(topic("availability"), payload("online"))
		id := r.publish(events.MotionEnd)
		if got := eventIDs(t, sub, seen, 1); got[0] != id {
			t.Fatalf("round %d: published %v first, want %d", round, got, id)
		}
		r.stop()
		// Turned off: what was published is removed, the cursor too;
		// events happen meanwhile.
		if err := mqtt.Remove(context.Background(), mqtt.Options{Broker: b.URL, DeviceID: deviceID},
			mqtt.Deps{Bus: r.bus, History: r.events, Catalog: set.cat, Settings: set, Status: func() mqtt.Status { return mqtt.Status{} }}); err != nil {
			t.Fatal(err)
		}
		r.publish(events.Motion)
		sub.Forget()
	}
}
