package mqtt

import (
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// TestStoreHandsOutCopies: the store keeps a PUBLISH of its own, and
// what paho's resume marks as a duplicate is a copy: neither the packet
// a writer may still be encoding nor the stored one is shared.
func TestStoreHandsOutCopies(t *testing.T) {
	s := newCopyingStore()
	s.Open()
	defer s.Close()
	pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pub.Qos, pub.MessageID, pub.TopicName, pub.Payload = 1, 7, "camd/x/events", []byte("{}")
	s.Put("o.7", pub)
	got, ok := s.Get("o.7").(*packets.PublishPacket)
	if !ok || got == pub || got.MessageID != 7 || got.TopicName != pub.TopicName || string(got.Payload) != "{}" {
		t.Fatalf("Get: %+v (same packet: %v)", got, got == pub)
	}
	got.Dup = true
	pub.FixedHeader.RemainingLength = 99 // the writer encoding what it was given
	again := s.Get("o.7").(*packets.PublishPacket)
	if pub.Dup || again.Dup || again.RemainingLength == 99 || again == got {
		t.Fatalf("the stored packet is shared: put %+v, got %+v, then %+v", pub, got, again)
	}
	sub := packets.NewControlPacket(packets.Subscribe)
	s.Put("o.8", sub)
	if s.Get("o.8") != sub {
		t.Fatal("other packets are handed out as they are")
	}
}
