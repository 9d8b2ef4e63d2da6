// Package mqtt publishes camd's events and state to an MQTT broker the
// owner configured, with Home Assistant's MQTT discovery: one device with
// a camera (the snapshot JPEG), a motion binary sensor, a doorbell event,
// storage and recording sensors, and switches and selects for mute, the
// status LED, night mode and the recording mode that change the settings
// when Home Assistant commands them.
//
// A Client follows the event log from a cursor kept in the catalog
// (events.Follow) and publishes each event it wants with QoS 1, moving
// the cursor once the broker acknowledged it: the events missed while
// the broker was away, or camd stopped, are published when both are
// back, at most Options.MaxReplay of them. It announces itself online on its
// availability topic, with a retained last will that says offline, and
// reconnects with a growing pause (paho's backoff) when the broker goes
// away. Nothing is sent unless the owner configured a broker: camd
// builds no Client otherwise. docs/mqtt.md lists the topics and the
// entities.
package mqtt
