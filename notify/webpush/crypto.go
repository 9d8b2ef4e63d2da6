package webpush

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"time"

	"github.com/camd-project/camd/internal/durable"
)

// Errors of Web Push.
var (
	ErrKeys     = errors.New("webpush: p256dh must be a P-256 public key and auth 16 bytes (base64url)")
	ErrTooLarge = errors.New("webpush: message too large")
	ErrVAPIDKey = errors.New("webpush: the VAPID key file is not an ECDSA P-256 key")
)

// recordSize is the one record's size (RFC 8188 rs): the whole message
// is one record.
const recordSize = 4096

// MaxPayload is the most plaintext one message carries: a push service
// takes 4096 bytes of body (RFC 8291 §4), less the header (86 bytes),
// the padding delimiter and the tag.
const MaxPayload = recordSize - 86 - 1 - 16

// b64 is the unpadded base64url of the push APIs.
var b64 = base64.RawURLEncoding

// decodeKeys reads a subscription's keys as a browser gives them.
func decodeKeys(p256dh, auth string) (*ecdh.PublicKey, []byte, error) {
	pb, err := b64.DecodeString(trimPad(p256dh))
	if err != nil {
		return nil, nil, ErrKeys
	}
	pub, err := ecdh.P256().NewPublicKey(pb)
	if err != nil {
		return nil, nil, ErrKeys
	}
	ab, err := b64.DecodeString(trimPad(auth))
	if err != nil || len(ab) != 16 {
		return nil, nil, ErrKeys
	}
	return pub, ab, nil
}

func trimPad(s string) string {
	for len(s) > 0 && s[len(s)-1] == '=' {
		s = s[:len(s)-1]
	}
	return s
}

// encrypt is RFC 8291: plaintext for the user agent's key ua and auth
// secret, from the sender's one-time key as and a random salt (both
// given, so that the RFC's example can be checked), as one aes128gcm
// record (RFC 8188) whose header names as's public key.
func encrypt(ua *ecdh.PublicKey, auth []byte, plaintext []byte, as *ecdh.PrivateKey, salt []byte) ([]byte, error) {
	if len(plaintext) > MaxPayload {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(plaintext), MaxPayload)
	}
	secret, err := as.ECDH(ua)
	if err != nil {
		return nil, fmt.Errorf("webpush: %w", err)
	}
	asPub, uaPub := as.PublicKey().Bytes(), ua.Bytes()
	// PRK_key = HMAC-SHA-256(auth_secret, ecdh_secret);
	// IKM = HKDF-Expand(PRK_key, "WebPush: info" 0x00 ua_public as_public, 32)
	prkKey, err := hkdf.Extract(sha256.New, secret, auth)
	if err != nil {
		return nil, err
	}
	info := append(append([]byte("WebPush: info\x00"), uaPub...), asPub...)
	ikm, err := hkdf.Expand(sha256.New, prkKey, string(info), 32)
	if err != nil {
		return nil, err
	}
	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, err
	}
	cek, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, err
	}
	nonce, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	// header: salt(16) rs(4) idlen(1) keyid(65); then the one record,
	// the plaintext and its delimiter 0x02 (the last record), sealed.
	out := make([]byte, 0, 16+4+1+len(asPub)+len(plaintext)+1+gcm.Overhead())
	out = append(out, salt...)
	out = binary.BigEndian.AppendUint32(out, recordSize)
	out = append(out, byte(len(asPub)))
	out = append(out, asPub...)
	record := append(append(make([]byte, 0, len(plaintext)+1), plaintext...), 2)
	return gcm.Seal(out, nonce, record, nil), nil
}

// Encrypt encrypts plaintext for a subscription's keys (base64url, as a
// browser's PushSubscription gives them) with a new key and salt.
func Encrypt(p256dh, auth string, plaintext []byte) ([]byte, error) {
	ua, secret, err := decodeKeys(p256dh, auth)
	if err != nil {
		return nil, err
	}
	as, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, 16)
	rand.Read(salt)
	return encrypt(ua, secret, plaintext, as, salt)
}

// Key is the device's VAPID key (RFC 8292): push services know the
// device's messages by it, and a browser subscribes with its public
// half (applicationServerKey).
type Key struct {
	priv *ecdsa.PrivateKey
	pub  []byte // uncompressed point
}

// LoadKey reads the VAPID key at path, making it (mode 0600) the first
// time. A factory reset erases it: the device is a new sender, and the
// old subscriptions, erased with the catalog, are not used again.
func LoadKey(path string) (*Key, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, err
		}
		if err := durable.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, fmt.Errorf("webpush: writing the VAPID key: %w", err)
		}
		return newKey(priv)
	}
	if err != nil {
		return nil, fmt.Errorf("webpush: reading the VAPID key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, ErrVAPIDKey
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	priv, ok := k.(*ecdsa.PrivateKey)
	if err != nil || !ok || priv.Curve != elliptic.P256() {
		return nil, ErrVAPIDKey
	}
	return newKey(priv)
}

func newKey(priv *ecdsa.PrivateKey) (*Key, error) {
	pub, err := priv.PublicKey.ECDH()
	if err != nil {
		return nil, err
	}
	return &Key{priv: priv, pub: pub.Bytes()}, nil
}

// Public is the public key, base64url (the page's applicationServerKey).
func (k *Key) Public() string { return b64.EncodeToString(k.pub) }

// authorization is the Authorization header of a push to endpoint (RFC
// 8292): "vapid t=<JWT>, k=<public key>", the JWT signed with ES256 for
// the push service's origin (aud), valid for 12 hours (exp), naming
// the sender's contact (sub).
func (k *Key) authorization(endpoint, subject string, now time.Time) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", err
	}
	header := b64.EncodeToString([]byte(`{"typ":"JWT","alg":"ES256"}`))
	claims, _ := json.Marshal(map[string]any{
		"aud": u.Scheme + "://" + u.Host,
		"exp": now.Add(12 * time.Hour).Unix(),
		"sub": subject,
	})
	signing := header + "." + b64.EncodeToString(claims)
	digest := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, k.priv, digest[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return "vapid t=" + signing + "." + b64.EncodeToString(sig) + ", k=" + k.Public(), nil
}
