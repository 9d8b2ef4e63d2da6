package mqtt

import (
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// copyingStore is paho's memory store, except that it keeps a PUBLISH
// of its own and hands out copies of it. paho writes to the packets it
// sends (the writer sets the length in the fixed header; resume, after a
// lost connection, the DUP flag) while another goroutine may read or
// write the same packet: the stored one, read by resume, is the one the
// writer is encoding (data races in paho v1.5.1,
// eclipse-paho/paho.mqtt.golang#703, open). With its own copy, the store
// shares no packet with a writer: resume changes only what it sends, and
// the writer encodes only what it was given.
type copyingStore struct{ *paho.MemoryStore }

func newCopyingStore() copyingStore { return copyingStore{paho.NewMemoryStore()} }

// Put keeps a copy of a PUBLISH (paho puts it before it hands the packet
// to the writer).
func (s copyingStore) Put(key string, p packets.ControlPacket) {
	s.MemoryStore.Put(key, copyPublish(p))
}

func (s copyingStore) Get(key string) packets.ControlPacket {
	return copyPublish(s.MemoryStore.Get(key))
}

// copyPublish returns a copy of a PUBLISH (its payload shared: nobody
// writes to it), other packets as they are.
func copyPublish(p packets.ControlPacket) packets.ControlPacket {
	if pub, ok := p.(*packets.PublishPacket); ok {
		c := *pub
		return &c
	}
	return p
}
