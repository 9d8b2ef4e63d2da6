package pairing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"time"
)

// An exchange is a nonce from Start and one proof for it in Finish. The
// device keeps nothing for an exchange it started: the nonce carries its
// expiry and is sealed, with a key that lives only in memory, to the
// address it was given to and the invitation it is for. So there is no
// exchange for a stranger to hold: as many run at once as clients start,
// each bound to its client, and every proof still counts against the
// same failure limits. What the device remembers is which nonces were
// used, until they expire, so that each serves one proof.
//
// A nonce is 32 bytes:
//
//	expiry (8 bytes, Unix milliseconds, big-endian) | random (8) | tag (16)
//	tag = HMAC-SHA256(key, "camd-nonce-v1" 0x00 expiry random address inviteID)[:16]
//
// where address is the client's IP address in its 16-byte form (IPv4
// mapped). Clients treat the nonce as opaque.
const (
	nonceSize    = 32
	nonceTagSize = 16
	nonceKeySize = 32
)

type nonceTag [nonceTagSize]byte

// mintNonce makes a nonce for from and inviteID that expires at expires.
func mintNonce(key []byte, from netip.Addr, inviteID string, expires time.Time) []byte {
	n := random(nonceSize)
	binary.BigEndian.PutUint64(n, uint64(expires.UnixMilli()))
	copy(n[nonceSize-nonceTagSize:], nonceMAC(key, n[:nonceSize-nonceTagSize], from, inviteID))
	return n
}

func nonceMAC(key, head []byte, from netip.Addr, inviteID string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("camd-nonce-v1\x00"))
	mac.Write(head)
	a := addrKey(from).As16()
	mac.Write(a[:])
	mac.Write([]byte(inviteID))
	return mac.Sum(nil)[:nonceTagSize]
}

// checkNonce reports whether key minted nonce for from and inviteID and
// it is still valid at now, and returns its tag and expiry.
func checkNonce(key, nonce []byte, from netip.Addr, inviteID string, now time.Time) (tag nonceTag, expires time.Time, ok bool) {
	if len(nonce) != nonceSize {
		return tag, expires, false
	}
	head := nonce[:nonceSize-nonceTagSize]
	if !hmac.Equal(nonce[len(head):], nonceMAC(key, head, from, inviteID)) {
		return tag, expires, false
	}
	expires = time.UnixMilli(int64(binary.BigEndian.Uint64(head)))
	if !now.Before(expires) {
		return tag, expires, false
	}
	copy(tag[:], nonce[len(head):])
	return tag, expires, true
}

// usedNonces are the nonces that served their one proof, until they
// expire. Only a nonce whose proof was checked is added (a success or a
// counted failure), so the set grows no faster than the failure limits
// and the pairings themselves allow. Manager.wmu guards it.
type usedNonces map[nonceTag]time.Time

// use marks tag used, and drops the entries that expired by now.
func (u usedNonces) use(tag nonceTag, expires, now time.Time) {
	for t, e := range u {
		if !now.Before(e) {
			delete(u, t)
		}
	}
	u[tag] = expires
}
