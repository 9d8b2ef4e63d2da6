// Package mqtt publishes camd's events and state to an MQTT broker the
// owner configured, with Home Assistant's MQTT discovery: one device with
// a camera (the snapshot JPEG), a motion binary sensor, a doorbell event,
// storage and recording sensors, and switches and selects for mute, the
// status LED, night mode and the recording mode that change the settings
// when Home Assistant commands them.
//
// A Client subscribes to the event bus (device/events) and publishes
// each event it wants with QoS 1; it announces itself online on its
// availability topic, with a retained last will that says offline, and
// reconnects with a growing pause (paho's backoff) when the broker goes
// away. Nothing is sent unless the owner configured a broker: camd
// builds no Client otherwise. docs/mqtt.md lists the topics and the
// entities.
package mqtt
