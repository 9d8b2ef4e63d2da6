package mqtt

import (
	"slices"
	"strconv"

	"github.com/camd-project/camd/device/settings"
)

// entity is one of the Home Assistant entities camd's device has.
type entity struct {
	component string // Home Assistant's platform: camera, binary_sensor, ...
	object    string // the object ID, and the topic level of its state
	name      string
	// fields are the platform's own discovery fields.
	fields map[string]any
	// state is the retained state published on TopicPrefix/NODE/object
	// (nil: the entity publishes otherwise: camera, motion, doorbell).
	state func(settings.Settings, Status) string
	// setting is the setting a command on object/set changes ("" for
	// none); values the payloads it takes.
	setting string
	values  []string
	parse   func(string) (any, bool)
}

// entities lists the device's entities, in the order their configs are
// published.
func entities() []entity {
	sw := func(object, name, setting string, get func(settings.Settings) bool) entity {
		return entity{
			component: "switch", object: object, name: name,
			fields:  map[string]any{"payload_on": "ON", "payload_off": "OFF", "state_on": "ON", "state_off": "OFF", "entity_category": "config"},
			state:   func(s settings.Settings, _ Status) string { return onOff(get(s)) },
			setting: setting, values: []string{"ON", "OFF"},
			parse: func(p string) (any, bool) {
				switch p {
				case "ON":
					return true, true
				case "OFF":
					return false, true
				}
				return nil, false
			},
		}
	}
	sel := func(object, name, icon string, options []string, get func(settings.Settings) string) entity {
		return entity{
			component: "select", object: object, name: name,
			fields:  map[string]any{"options": options, "entity_category": "config", "icon": icon},
			state:   func(s settings.Settings, _ Status) string { return get(s) },
			setting: object, values: options,
			parse: func(p string) (any, bool) { return p, slices.Contains(options, p) },
		}
	}
	bytesSensor := func(object, name string, get func(Status) int64) entity {
		return entity{
			component: "sensor", object: object, name: name,
			fields: map[string]any{"device_class": "data_size", "unit_of_measurement": "B", "state_class": "measurement",
				"suggested_unit_of_measurement": "GB", "entity_category": "diagnostic"},
			state: func(_ settings.Settings, st Status) string { return strconv.FormatInt(get(st), 10) },
		}
	}
	return []entity{
		// The camera's picture: the snapshot JPEG as it is (no base64).
		{component: "camera", object: "camera", name: "Snapshot", fields: map[string]any{"topic": "snapshot"}},
		{component: "binary_sensor", object: "motion", name: "Motion",
			fields: map[string]any{"state_topic": "motion", "device_class": "motion", "payload_on": "ON", "payload_off": "OFF"}},
		{component: "event", object: "doorbell", name: "Doorbell",
			fields: map[string]any{"state_topic": "doorbell", "device_class": "doorbell", "event_types": []string{"press"}}},
		bytesSensor("storage_used", "Recordings size", func(st Status) int64 { return st.UsedBytes }),
		bytesSensor("storage_free", "Storage free", func(st Status) int64 { return st.FreeBytes }),
		{component: "sensor", object: "recording", name: "Recording",
			fields: map[string]any{"device_class": "enum", "options": []string{"recording", "idle", "paused", "off"}, "icon": "mdi:record-rec"},
			state:  func(_ settings.Settings, st Status) string { return st.Recording }},
		sw("mute", "Mute", "mute", func(s settings.Settings) bool { return s.Mute }),
		sw("status_led", "Status LED", "status_led", func(s settings.Settings) bool { return s.StatusLED }),
		sel("night_mode", "Night mode", "mdi:weather-night", []string{"auto", "day", "night"}, func(s settings.Settings) string { return s.NightMode }),
		sel("recording_mode", "Recording mode", "mdi:record-rec", []string{"continuous", "motion", "off"}, func(s settings.Settings) string { return s.RecordingMode }),
	}
}

// discoveryTopic is where e's discovery config goes:
// DISCOVERY_PREFIX/COMPONENT/NODE/OBJECT/config.
func (c *Client) discoveryTopic(e entity) string {
	return c.opts.DiscoveryPrefix + "/" + e.component + "/" + c.node + "/" + e.object + "/config"
}

// config is e's discovery config for a device called name, with full
// topic names (no "~" abbreviation: the configs read as they are).
func (c *Client) config(e entity, name string) map[string]any {
	cfg := map[string]any{
		"name":                  e.name,
		"unique_id":             c.node + "_" + e.object,
		"availability_topic":    c.Topic("availability"),
		"payload_available":     online,
		"payload_not_available": offline,
		"qos":                   1,
		"device": map[string]any{
			"identifiers":  []string{c.node},
			"name":         name,
			"manufacturer": "camd",
			"model":        "camd",
			"sw_version":   c.opts.Version,
		},
		"origin": map[string]any{"name": "camd", "sw_version": c.opts.Version},
	}
	for k, v := range e.fields {
		if k == "topic" || k == "state_topic" {
			v = c.Topic(v.(string))
		}
		cfg[k] = v
	}
	if e.state != nil {
		cfg["state_topic"] = c.Topic(e.object)
	}
	if e.setting != "" {
		cfg["command_topic"] = c.Topic(e.object + "/set")
	}
	return cfg
}
