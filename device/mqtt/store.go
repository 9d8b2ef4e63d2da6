package mqtt

import (
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// copyingStore is paho's memory store, except that Get hands out a copy
// of a PUBLISH. When a connection is lost, paho's resume marks each
// stored publish it sends again as a duplicate (the DUP flag) while the
// lost connection's writer may still be encoding the same packet: a
// data race in paho v1.5.1 (eclipse-paho/paho.mqtt.golang#703, open).
// With a copy, resume changes only what it sends.
type copyingStore struct{ *paho.MemoryStore }

func newCopyingStore() copyingStore { return copyingStore{paho.NewMemoryStore()} }

func (s copyingStore) Get(key string) packets.ControlPacket {
	p := s.MemoryStore.Get(key)
	if pub, ok := p.(*packets.PublishPacket); ok {
		c := *pub
		return &c
	}
	return p
}
