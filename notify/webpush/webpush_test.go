package webpush

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/storage"
	"github.com/camd-project/camd/storage/eventlog"
)

// RFC 8291 Appendix A.
const (
	rfcPlaintext = "When I grow up, I want to be a watermelon"
	rfcASPrivate = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
	rfcUAPrivate = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
	rfcUAPublic  = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
	rfcAuth      = "BTBZMqHH6r4Tts7J_aSIgg"
	rfcSalt      = "DGv6ra1nlYgDCS1FRnbzlw"
	rfcBody      = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
)

func unb64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hkdfSHA256 is HKDF (RFC 5869) from HMAC, written here apart from
// crypto/hkdf, for the decrypting side.
func hkdfSHA256(salt, ikm, info []byte, n int) []byte {
	m := hmac.New(sha256.New, salt)
	m.Write(ikm)
	prk := m.Sum(nil)
	m = hmac.New(sha256.New, prk)
	m.Write(info)
	m.Write([]byte{1})
	return m.Sum(nil)[:n] // n ≤ 32: one block
}

// decrypt is the user agent's side of RFC 8291 (and RFC 8188's one
// record), written from the RFCs apart from encrypt.
func decrypt(body []byte, ua *ecdh.PrivateKey, auth []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("short header")
	}
	salt, rs, idlen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if idlen != 65 || len(body) < 21+idlen {
		return nil, fmt.Errorf("keyid length %d", idlen)
	}
	asPub, ct := body[21:21+idlen], body[21+idlen:]
	if uint32(len(ct)) > rs {
		return nil, errors.New("more than one record")
	}
	as, err := ecdh.P256().NewPublicKey(asPub)
	if err != nil {
		return nil, err
	}
	secret, err := ua.ECDH(as)
	if err != nil {
		return nil, err
	}
	keyInfo := append(append([]byte("WebPush: info\x00"), ua.PublicKey().Bytes()...), asPub...)
	ikm := hkdfSHA256(auth, secret, keyInfo, 32)
	cek := hkdfSHA256(salt, ikm, []byte("Content-Encoding: aes128gcm\x00"), 16)
	nonce := hkdfSHA256(salt, ikm, []byte("Content-Encoding: nonce\x00"), 12)
	block, _ := aes.NewCipher(cek)
	gcm, _ := cipher.NewGCM(block)
	pt, err := gcm.Open(nil, nonce, ct, nil)
	if err != nil {
		return nil, err
	}
	i := len(pt) - 1
	for i >= 0 && pt[i] == 0 {
		i--
	}
	if i < 0 || pt[i] != 2 {
		return nil, errors.New("no last-record delimiter")
	}
	return pt[:i], nil
}

func TestRFC8291Example(t *testing.T) {
	ua, err := ecdh.P256().NewPrivateKey(unb64(t, rfcUAPrivate))
	if err != nil {
		t.Fatal(err)
	}
	if got := base64.RawURLEncoding.EncodeToString(ua.PublicKey().Bytes()); got != rfcUAPublic {
		t.Fatalf("ua public %s", got)
	}
	// The independent decrypter reads the RFC's message.
	pt, err := decrypt(unb64(t, rfcBody), ua, unb64(t, rfcAuth))
	if err != nil || string(pt) != rfcPlaintext {
		t.Fatalf("decrypting the RFC's body: %q, %v", pt, err)
	}
	// encrypt makes the RFC's message from its keys and salt.
	as, _ := ecdh.P256().NewPrivateKey(unb64(t, rfcASPrivate))
	uaPub, auth, err := decodeKeys(rfcUAPublic, rfcAuth)
	if err != nil {
		t.Fatal(err)
	}
	body, err := encrypt(uaPub, auth, []byte(rfcPlaintext), as, unb64(t, rfcSalt))
	if err != nil {
		t.Fatal(err)
	}
	if got := base64.RawURLEncoding.EncodeToString(body); got != rfcBody {
		t.Fatalf("encrypt:\n got %s\nwant %s", got, rfcBody)
	}
	// A fresh key and salt each time, which the decrypter reads.
	b1, _ := Encrypt(rfcUAPublic, rfcAuth, []byte("x"))
	b2, _ := Encrypt(rfcUAPublic, rfcAuth, []byte("x"))
	if string(b1) == string(b2) {
		t.Fatal("two messages alike")
	}
	if pt, err := decrypt(b1, ua, auth); err != nil || string(pt) != "x" {
		t.Fatalf("%q %v", pt, err)
	}
	if _, err := Encrypt(rfcUAPublic, rfcAuth, make([]byte, MaxPayload+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatal(err)
	}
	big, err := Encrypt(rfcUAPublic, rfcAuth, make([]byte, MaxPayload))
	if err != nil || len(big) != 4096 {
		t.Fatalf("largest message %d bytes, %v", len(big), err)
	}
}

// checkVAPID verifies an Authorization header (RFC 8292) as a push
// service does: the JWT's ES256 signature by the key k, aud the push
// service's origin, exp in the future and within 24 h, sub a contact.
func checkVAPID(header, origin string, now time.Time) (key string, err error) {
	rest, ok := strings.CutPrefix(header, "vapid ")
	if !ok {
		return "", errors.New("not vapid")
	}
	params := map[string]string{}
	for _, p := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		params[k] = v
	}
	jwt, k := params["t"], params["k"]
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return "", errors.New("not a JWT")
	}
	dec := base64.RawURLEncoding
	var hdr struct{ Typ, Alg string }
	var claims struct {
		Aud string `json:"aud"`
		Exp int64  `json:"exp"`
		Sub string `json:"sub"`
	}
	hb, _ := dec.DecodeString(parts[0])
	cb, _ := dec.DecodeString(parts[1])
	if json.Unmarshal(hb, &hdr) != nil || hdr.Alg != "ES256" || json.Unmarshal(cb, &claims) != nil {
		return "", errors.New("bad JWT header or claims")
	}
	pub, err := dec.DecodeString(k)
	if err != nil || len(pub) != 65 || pub[0] != 4 {
		return "", errors.New("bad k")
	}
	pk, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pub)
	if err != nil {
		return "", err
	}
	sig, err := dec.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return "", errors.New("bad signature encoding")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pk, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return "", errors.New("signature does not verify")
	}
	exp := time.Unix(claims.Exp, 0)
	switch {
	case claims.Aud != origin:
		return "", fmt.Errorf("aud %q, want %q", claims.Aud, origin)
	case !exp.After(now) || exp.After(now.Add(24*time.Hour)):
		return "", fmt.Errorf("exp %v", exp)
	case !strings.HasPrefix(claims.Sub, "mailto:") && !strings.HasPrefix(claims.Sub, "https://"):
		return "", fmt.Errorf("sub %q", claims.Sub)
	}
	return k, nil
}

// phone is a browser's subscription: its keys, and the messages the
// push service decrypted for it.
type phone struct {
	key  *ecdh.PrivateKey
	auth []byte
	path string
}

func newPhone(path string) *phone {
	k, _ := ecdh.P256().GenerateKey(rand.Reader)
	a := make([]byte, 16)
	rand.Read(a)
	return &phone{key: k, auth: a, path: path}
}

func (p *phone) keys() Keys {
	return Keys{P256dh: base64.RawURLEncoding.EncodeToString(p.key.PublicKey().Bytes()), Auth: base64.RawURLEncoding.EncodeToString(p.auth)}
}

// pushService is an HTTPS push service on loopback: it checks each
// request's VAPID and headers and decrypts the message for its phone.
type pushService struct {
	t      testing.TB
	srv    *httptest.Server
	vapid  string // the device's public key
	mu     sync.Mutex
	phones map[string]*phone
	status map[string]int // path → status to answer
	got    chan delivered
	conns  atomic.Int32
}

type delivered struct {
	path    string
	msg     pushed
	urgency string
	at      time.Time
}

func newPushService(t testing.TB, vapid string) *pushService {
	ps := &pushService{t: t, vapid: vapid, phones: map[string]*phone{}, status: map[string]int{}, got: make(chan delivered, 1024)}
	ps.srv = httptest.NewUnstartedServer(ps)
	ps.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			ps.conns.Add(1)
		}
	}
	ps.srv.StartTLS()
	t.Cleanup(ps.srv.Close)
	return ps
}

func (ps *pushService) phone(path string) *phone {
	p := newPhone(path)
	ps.mu.Lock()
	ps.phones[path] = p
	ps.mu.Unlock()
	return p
}

func (ps *pushService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ps.mu.Lock()
	p, status := ps.phones[r.URL.Path], ps.status[r.URL.Path]
	ps.mu.Unlock()
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	if p == nil || r.Method != http.MethodPost {
		ps.t.Errorf("push service: %s %s", r.Method, r.URL.Path)
		w.WriteHeader(404)
		return
	}
	k, err := checkVAPID(r.Header.Get("Authorization"), ps.srv.URL, time.Now())
	if err != nil || k != ps.vapid {
		ps.t.Errorf("push service: VAPID: %v (k %s)", err, k)
		w.WriteHeader(401)
		return
	}
	if r.Header.Get("Content-Encoding") != "aes128gcm" || r.Header.Get("TTL") == "" {
		ps.t.Errorf("push service: headers %v", r.Header)
	}
	body, _ := io.ReadAll(r.Body)
	pt, err := decrypt(body, p.key, p.auth)
	if err != nil {
		ps.t.Errorf("push service: decrypt: %v", err)
		w.WriteHeader(400)
		return
	}
	var m pushed
	if err := json.Unmarshal(pt, &m); err != nil {
		ps.t.Errorf("push service: %s: %v", pt, err)
	}
	ps.got <- delivered{r.URL.Path, m, r.Header.Get("Urgency"), time.Now()}
	w.WriteHeader(201)
}

func (ps *pushService) next(t testing.TB) delivered {
	t.Helper()
	select {
	case d := <-ps.got:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no push")
		return delivered{}
	}
}

// none checks that nothing more was pushed once a later push, which
// the sink handles after every earlier event, arrived.
func (ps *pushService) expectOnly(t testing.TB, path string) delivered {
	t.Helper()
	d := ps.next(t)
	if d.path != path {
		t.Fatalf("pushed to %s, want %s (%+v)", d.path, path, d.msg)
	}
	return d
}

type fakeUsers struct {
	mu    sync.Mutex
	users []pairing.User
}

func (f *fakeUsers) Users() []pairing.User {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]pairing.User(nil), f.users...)
}

type env struct {
	cat   *storage.Catalog
	log   *eventlog.Log
	bus   *events.Bus
	users *fakeUsers
	sink  *Sink
	ps    *pushService
}

func newEnv(t testing.TB) *env {
	dir := t.TempDir()
	cat, err := storage.OpenCatalog(filepath.Join(dir, "catalog.db"), storage.CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bus := events.New(events.Options{})
	e := &env{cat: cat, bus: bus, log: eventlog.New(cat, eventlog.Options{Notify: bus.Publish}),
		users: &fakeUsers{users: []pairing.User{{ID: "owner", Role: pairing.Owner}, {ID: "viewer", Role: pairing.Viewer}}}}
	key, err := LoadKey(filepath.Join(dir, "vapid.pem"))
	if err != nil {
		t.Fatal(err)
	}
	e.ps = newPushService(t, key.Public())
	pool := x509.NewCertPool()
	pool.AddCert(e.ps.srv.Certificate())
	e.sink, err = New(Options{Catalog: cat, Bus: bus, History: e.log, Users: e.users, Key: key,
		AllowPrivate: true, TLS: &tls.Config{RootCAs: pool}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.sink.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; bus.Close(); cat.Close() })
	return e
}

func (e *env) add(t testing.TB, kind string) uint64 {
	t.Helper()
	id, err := e.log.Add(eventlog.Event{Kind: kind, Message: kind})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (e *env) subscribe(t testing.TB, user, path string) Subscription {
	t.Helper()
	p := e.ps.phone(path)
	sub, err := e.sink.Subscribe(user, e.ps.srv.URL+path, p.keys())
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

func TestPushesEncryptedSignedByPreference(t *testing.T) {
	e := newEnv(t)
	e.subscribe(t, "owner", "/owner")
	e.subscribe(t, "viewer", "/viewer")
	// Defaults: the doorbell pushes, motion and settings do not.
	e.add(t, events.Motion)
	e.add(t, events.SettingsChanged)
	id := e.add(t, events.DoorbellPressed)
	got := map[string]delivered{}
	for range 2 {
		d := e.ps.next(t)
		got[d.path] = d
	}
	for _, path := range []string{"/owner", "/viewer"} {
		if d := got[path]; d.msg.ID != id || d.msg.Type != events.DoorbellPressed || d.urgency != "high" {
			t.Fatalf("%s got %+v", path, d)
		}
	}
	// The owner turns on motion and settings; a viewer may not choose
	// settings (not theirs to see) and gets motion at most once an interval.
	if _, err := e.sink.SetPreferences("viewer", false, Preferences{Types: []string{"settings.changed"}}); !errors.Is(err, ErrType) {
		t.Fatalf("a viewer chose settings: %v", err)
	}
	if _, err := e.sink.SetPreferences("owner", true, Preferences{Types: []string{"motion", "settings.*", "doorbell.pressed"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sink.SetPreferences("viewer", false, Preferences{Types: []string{"motion", "doorbell.*"}, MotionInterval: 3600}); err != nil {
		t.Fatal(err)
	}
	m1 := e.add(t, events.Motion)
	e.add(t, events.Motion) // within the interval: not pushed
	s := e.add(t, events.SettingsChanged)
	got = map[string]delivered{}
	var order []uint64
	for range 3 {
		d := e.ps.next(t)
		got[d.path+fmt.Sprint(d.msg.ID)] = d
		order = append(order, d.msg.ID)
	}
	if _, ok := got[fmt.Sprint("/owner", m1)]; !ok {
		t.Fatalf("owner's motion missing: %v", order)
	}
	if _, ok := got[fmt.Sprint("/viewer", m1)]; !ok {
		t.Fatalf("viewer's motion missing: %v", order)
	}
	if _, ok := got[fmt.Sprint("/owner", s)]; !ok {
		t.Fatalf("owner's settings missing: %v", order)
	}
	// Nothing else came: a later doorbell is the next push for each.
	d := e.add(t, events.DoorbellPressed)
	for range 2 {
		if got := e.ps.next(t); got.msg.ID != d {
			t.Fatalf("an extra push %+v", got)
		}
	}
	testenv.Eventually(t, "seven delivered", func() bool { return e.sink.Stats().Delivered == 7 })
	if st := e.sink.Stats(); st != (Stats{Delivered: 7}) {
		t.Fatalf("stats %+v", st)
	}
}

func TestExpiredSubscriptionIsRemoved(t *testing.T) {
	for _, status := range []int{404, 410} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			e := newEnv(t)
			gone := e.subscribe(t, "owner", "/gone")
			e.subscribe(t, "owner", "/ok")
			e.ps.mu.Lock()
			e.ps.status["/gone"] = status
			e.ps.mu.Unlock()
			e.add(t, events.DoorbellPressed)
			e.ps.expectOnly(t, "/ok")
			testenv.Eventually(t, "the gone subscription removed", func() bool {
				subs, _ := e.sink.List("owner")
				return len(subs) == 1 && subs[0].ID != gone.ID
			})
			testenv.Eventually(t, "one delivered, one failed", func() bool { return e.sink.Stats() == (Stats{Delivered: 1, Failed: 1}) })
		})
	}
}

// An event older than MaxAge when the sink reaches it (camd catching up
// after a restart) is not pushed, and counted as dropped.
func TestOldEventsAreDropped(t *testing.T) {
	e := newEnv(t)
	e.subscribe(t, "owner", "/owner")
	if _, err := e.log.Add(eventlog.Event{Kind: events.DoorbellPressed, Time: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	id := e.add(t, events.DoorbellPressed)
	if d := e.ps.next(t); d.msg.ID != id {
		t.Fatalf("pushed %+v", d.msg)
	}
	testenv.Eventually(t, "one delivered", func() bool { return e.sink.Stats().Delivered == 1 })
	if st := e.sink.Stats(); st != (Stats{Delivered: 1, Dropped: 1}) {
		t.Fatalf("stats %+v", st)
	}
}

func TestRevokedUserLosesSubscriptions(t *testing.T) {
	e := newEnv(t)
	e.subscribe(t, "viewer", "/viewer")
	e.subscribe(t, "owner", "/owner")
	e.users.mu.Lock()
	e.users.users = e.users.users[:1] // the viewer is revoked
	e.users.mu.Unlock()
	e.log.Add(eventlog.Event{Kind: events.UserRevoked, Data: map[string]string{"user": "viewer"}})
	e.add(t, events.DoorbellPressed)
	e.ps.expectOnly(t, "/owner")
	testenv.Eventually(t, "the viewer's subscription removed", func() bool { subs, _ := e.sink.List("viewer"); return len(subs) == 0 })
}

func TestSubscriptionsAreTheirUsers(t *testing.T) {
	e := newEnv(t)
	sub := e.subscribe(t, "viewer", "/v")
	if err := e.sink.Unsubscribe("other", sub.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another user removed it: %v", err)
	}
	if subs, _ := e.sink.List("other"); len(subs) != 0 {
		t.Fatal("another user lists it")
	}
	// The same endpoint again replaces it.
	again, err := e.sink.Subscribe("viewer", sub.Endpoint, sub.Keys)
	if err != nil {
		t.Fatal(err)
	}
	if subs, _ := e.sink.List("viewer"); len(subs) != 1 || subs[0].ID != again.ID {
		t.Fatalf("%+v", subs)
	}
	for i := 1; i < MaxPerUser; i++ {
		e.subscribe(t, "viewer", fmt.Sprint("/v", i))
	}
	if _, err := e.sink.Subscribe("viewer", e.ps.srv.URL+"/v-last", sub.Keys); !errors.Is(err, ErrTooMany) {
		t.Fatalf("one too many: %v", err)
	}
	if err := e.sink.Unsubscribe("viewer", again.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sink.Subscribe("viewer", sub.Endpoint, Keys{P256dh: "AAAA", Auth: sub.Keys.Auth}); !errors.Is(err, ErrKeys) {
		t.Fatalf("bad keys: %v", err)
	}
}

// A paired viewer who may subscribe an endpoint must not reach the LAN
// or the device itself through camd: refused when subscribing, and the
// dialer refuses a name that resolves to such an address.
func TestEndpointsMustBePublicHTTPS(t *testing.T) {
	s := &Sink{}
	for _, ep := range []string{
		"http://push.example.com/x", "https://127.0.0.1/x", "https://[::1]/x", "https://10.0.0.8/x",
		"https://192.168.1.1:8443/", "https://169.254.169.254/latest/meta-data", "https://[fe80::1%25eth0]/",
		"https://localhost/x", "https://printer.local/", "https://router/", "https://100.64.0.1/",
		"https://[::ffff:192.168.0.1]/", "https://[64:ff9b::c0a8:1]/", "https://0.0.0.0/", "https://user:pw@push.example.com/",
		"ftp://push.example.com/", "https://", "https://[2002:c0a8:0101::1]/",
	} {
		if err := s.CheckEndpoint(ep); !errors.Is(err, ErrEndpoint) {
			t.Errorf("CheckEndpoint(%q) = %v", ep, err)
		}
	}
	for _, ep := range []string{"https://fcm.googleapis.com/fcm/send/abc", "https://updates.push.services.mozilla.com/wpush/v2/x", "https://ntfy.example.org:8443/up?x=1", "https://8.8.8.8/"} {
		if err := s.CheckEndpoint(ep); err != nil {
			t.Errorf("CheckEndpoint(%q) = %v", ep, err)
		}
	}
	for _, a := range []string{"127.0.0.1:443", "[::1]:443", "10.1.2.3:443", "[fd00::1]:443", "169.254.169.254:80", "[::ffff:10.0.0.1]:443"} {
		if err := s.control("tcp", a, nil); !errors.Is(err, ErrRefused) {
			t.Errorf("control(%s) = %v", a, err)
		}
	}
	if err := s.control("tcp", "93.184.215.14:443", nil); err != nil {
		t.Error(err)
	}
	if Public(netip.MustParseAddr("224.0.0.251")) {
		t.Error("multicast is public")
	}
}

// Without AllowPrivate, a subscription whose name resolves to loopback
// (here the push service's own name) gets no connection.
func TestDialerRefusesLoopbackAtConnect(t *testing.T) {
	e := newEnv(t)
	p := e.ps.phone("/x")
	e.sink.opts.AllowPrivate = false
	u := strings.Replace(e.ps.srv.URL, "127.0.0.1", "localhost", 1)
	status, err := e.sink.send(context.Background(), job{sub: Subscription{Endpoint: u + "/x", Keys: p.keys()}, payload: []byte("{}")})
	if !errors.Is(err, ErrRefused) || e.ps.conns.Load() != 0 {
		t.Fatalf("send = %d, %v; %d connections", status, err, e.ps.conns.Load())
	}
}

func TestNoSubscriptionNoConnection(t *testing.T) {
	e := newEnv(t)
	for range 5 {
		e.add(t, events.DoorbellPressed)
	}
	// A subscription made now gets only later events: the first push
	// is the next doorbell, and it is the first connection.
	e.subscribe(t, "owner", "/o")
	id := e.add(t, events.DoorbellPressed)
	if d := e.ps.next(t); d.msg.ID != id {
		t.Fatalf("pushed %+v", d)
	}
	if n := e.ps.conns.Load(); n != 1 {
		t.Fatalf("%d connections", n)
	}
}

func TestVAPIDKeyKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vapid.pem")
	k1, err := LoadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadKey(path)
	if err != nil || k1.Public() != k2.Public() || len(unb64(t, k1.Public())) != 65 {
		t.Fatalf("%v %s %s", err, k1.Public(), k2.Public())
	}
	h, err := k1.authorization("https://push.example.net/p/1", "mailto:a@example.com", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if k, err := checkVAPID(h, "https://push.example.net", time.Now()); err != nil || k != k1.Public() {
		t.Fatal(err)
	}
}

// BenchmarkEventToPushService: from storing an event to the push
// service on loopback having decrypted it (p50, p99).
func BenchmarkEventToPushService(b *testing.B) {
	e := newEnv(b)
	e.subscribe(b, "owner", "/o")
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		e.add(b, events.DoorbellPressed)
		d := e.ps.next(b)
		lat = append(lat, d.at.Sub(start))
	}
	reportPercentiles(b, lat)
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	s := slices.Sorted(slices.Values(lat))
	b.ReportMetric(float64(s[len(s)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(s[len(s)*99/100].Microseconds())/1000, "p99_ms")
}
