package device

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/camd-project/camd/device/mqtt"
	"github.com/camd-project/camd/device/mqtt/mqtttest"
)

// BenchmarkEventToMQTT measures an event's way from its producer to a
// home automation server: Add (the fsynced catalog commit, then the
// bus) to the event's JSON received by a subscriber of a real mosquitto
// on loopback (camd publishes with QoS 1), one event at a time.
func BenchmarkEventToMQTT(b *testing.B) {
	broker := mqtttest.Start(b, mqtttest.Options{})
	d := running(b, func(c *Config) {
		c.MQTT.Enabled, c.MQTT.Broker = true, broker.URL
	})
	base := "camd/" + mqtt.NodeID(d.id.ID)
	sub := broker.Subscribe(mqtttest.Login{}, base+"/events", base+"/availability")
	sub.Wait(base+"/availability", func(m mqtttest.Message) bool { return string(m.Payload) == "online" })
	eventLatency(b, d, func(id uint64) {
		for {
			select {
			case m := <-sub.C:
				var e struct{ ID uint64 }
				if m.Topic == base+"/events" && json.Unmarshal(m.Payload, &e) == nil && e.ID == id {
					return
				}
			case <-time.After(10 * time.Second):
				b.Fatalf("event %d did not come", id)
			}
		}
	})
}
