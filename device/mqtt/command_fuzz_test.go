package mqtt

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/device/settings"
	"github.com/camd-project/camd/storage"
	"github.com/camd-project/camd/storage/eventlog"
)

// message is a paho.Message of a test's making.
type message struct {
	paho.Message // nil: the methods below are the ones used
	topic        string
	payload      []byte
	retained     bool
}

func (m message) Topic() string   { return m.topic }
func (m message) Payload() []byte { return m.payload }
func (m message) Retained() bool  { return m.retained }

// patches records the changes a command asks for.
type patches struct{ got []map[string]json.RawMessage }

func (p *patches) Get() settings.Settings { return settings.Defaults() }
func (p *patches) Change(patch map[string]json.RawMessage, _ pairing.User) (settings.Settings, error) {
	p.got = append(p.got, patch)
	return settings.Defaults(), nil
}

// Whatever arrives on a command topic, camd changes at most one of the
// four settings, to one of its values.
func FuzzCommand(f *testing.F) {
	f.Add("mute/set", []byte("ON"), false)
	f.Add("night_mode/set", []byte("night"), false)
	f.Add("recording_mode/set", []byte(`"off"`), false)
	f.Add("resolution/set", []byte("16x16"), false)
	f.Add("status_led/set", []byte("OFF"), true)
	allowed := map[string][]string{
		"mute": {"true", "false"}, "status_led": {"true", "false"},
		"night_mode": {`"auto"`, `"day"`, `"night"`}, "recording_mode": {`"continuous"`, `"motion"`, `"off"`},
	}
	cat, err := storage.OpenCatalog(filepath.Join(f.TempDir(), "catalog.db"), storage.CatalogOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { cat.Close() })
	history := eventlog.New(cat, eventlog.Options{})
	f.Fuzz(func(t *testing.T, level string, payload []byte, retained bool) {
		p := &patches{}
		c, err := New(Options{Broker: "mqtt://127.0.0.1", DeviceID: "X"}, Deps{
			Bus: events.New(events.Options{}), History: history, Catalog: cat, Settings: p, Status: func() Status { return Status{} },
		})
		if err != nil {
			t.Fatal(err)
		}
		c.client = paho.NewClient(paho.NewClientOptions()) // never connected: publishes fail
		c.command(nil, message{topic: c.Topic(level), payload: payload, retained: retained})
		if len(p.got) > 1 {
			t.Fatalf("%d changes", len(p.got))
		}
		for _, patch := range p.got {
			if retained || len(patch) != 1 {
				t.Fatalf("patch %v (retained %v)", patch, retained)
			}
			for k, v := range patch {
				if !slices.Contains(allowed[k], string(v)) || k+"/set" != strings.TrimSpace(level) {
					t.Fatalf("%s=%s from %q %q", k, v, level, payload)
				}
			}
		}
	})
}

// A broker URL is accepted only as mqtt(s)://HOST[:PORT], and no error
// quotes a password written into it.
func FuzzBrokerURL(f *testing.F) {
	f.Add("mqtt://127.0.0.1:1883")
	f.Add("mqtts://user:hunter2secret@broker.lan")
	f.Add("ssl://[::1]:8883/")
	f.Add("tcp://host?x=1")
	f.Fuzz(func(t *testing.T, raw string) {
		broker, _, err := brokerConfig(Options{Broker: raw})
		if err != nil {
			// The user information: from the scheme to the last @, as
			// url.Parse reads it.
			at, scheme := strings.LastIndex(raw, "@"), strings.Index(raw, "://")
			if at >= 0 {
				secret := raw[:at]
				if scheme >= 0 && scheme+3 <= at {
					secret = raw[scheme+3 : at]
				}
				if len(secret) >= 6 && !strings.Contains(raw[at:], secret) && strings.Contains(err.Error(), secret) {
					t.Fatalf("error quotes the user information %q: %v", secret, err)
				}
			}
			return
		}
		if !strings.HasPrefix(broker, "tcp://") && !strings.HasPrefix(broker, "ssl://") {
			t.Fatalf("%q became %q", raw, broker)
		}
	})
}
