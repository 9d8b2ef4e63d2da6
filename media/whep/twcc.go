package whep

import (
	"encoding/binary"
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// twccStamper stamps every outgoing RTP packet with a transport-wide
// sequence number (the transport-cc header extension), as pion's
// twcc.HeaderExtensionInterceptor does, without allocating per packet:
// each stream writes the extension from a buffer of its own and hands the
// interceptors below one reused Attributes map (congestion control would
// make one per packet otherwise).
//
// A stream's packets must not be written concurrently: camd's tracks
// write under their lock, and pion writes nothing of its own on them.
type twccStamper struct {
	interceptor.NoOp
	next atomic.Uint32 // shared by the connection's streams
}

// twccStamperFactory makes one stamper per peer connection.
type twccStamperFactory struct{}

func (twccStamperFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &twccStamper{}, nil
}

func (t *twccStamper) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	var id uint8
	for _, e := range info.RTPHeaderExtensions {
		if e.URI == twccURI {
			id = uint8(e.ID)
		}
	}
	if id == 0 {
		return w
	}
	var buf [2]byte
	attrs := interceptor.Attributes{}
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		binary.BigEndian.PutUint16(buf[:], uint16(t.next.Add(1)-1))
		if err := h.SetExtension(id, buf[:]); err != nil {
			return 0, err
		}
		if a == nil {
			clear(attrs)
			a = attrs
		}
		return w.Write(h, payload, a)
	})
}
