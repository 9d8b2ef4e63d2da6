// Package mqtttest runs a real mosquitto broker for tests, on a free
// loopback port with a generated configuration (with or without TLS and
// passwords), and a subscriber that keeps what it receives.
package mqtttest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/camd-project/camd/internal/testenv"
)

// Options shape a broker. The zero value is a plain broker that lets
// anyone in.
type Options struct {
	// Users are the only ones let in (name to password); none: anyone.
	Users map[string]string
	// TLS serves MQTT over TLS with a certificate for 127.0.0.1 signed
	// by a CA of the test's (Broker.CAFile, Broker.CertSHA256).
	TLS bool
	// Persistent keeps the broker's state across Stop and Restart (a
	// file in the test's directory, written as it stops): retained
	// messages, and the sessions of subscribers with a Login.Session
	// with the messages queued for them while they were away.
	Persistent bool
}

// Broker is a running mosquitto.
type Broker struct {
	// URL is what camd is configured with: mqtt://127.0.0.1:PORT, or
	// mqtts:// with TLS; Addr the host and port.
	URL, Addr string
	// CAFile is the PEM of the CA that signed the broker's certificate,
	// CertSHA256 the SHA-256 of that certificate (hex), with TLS.
	CAFile, CertSHA256 string

	tb   testing.TB
	bin  string
	conf string
	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
}

// binary finds mosquitto (in /usr/sbin, which is not on every PATH).
func binary(tb testing.TB) string {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
		return "/usr/sbin/mosquitto"
	}
	return testenv.Tool(tb, "mosquitto") // skips, or fails under make test
}

// Start runs a broker until the test ends.
func Start(tb testing.TB, opts Options) *Broker {
	tb.Helper()
	b := &Broker{tb: tb, bin: binary(tb)}
	dir := tb.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	b.Addr = l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(b.Addr)
	persistence := "persistence false"
	if opts.Persistent {
		persistence = "persistence true\npersistence_location " + dir + "/"
	}
	conf := []string{
		"listener " + port + " 127.0.0.1",
		persistence,
		"log_dest stderr",
		"log_type error", "log_type warning", "log_type notice", "log_type information",
	}
	if os.Geteuid() == 0 {
		conf = append(conf, "user root") // read the test's files as root
	}
	if len(opts.Users) == 0 {
		conf = append(conf, "allow_anonymous true")
	} else {
		pw := filepath.Join(dir, "passwords")
		first := true
		for u, p := range opts.Users {
			args := []string{"-b", pw, u, p}
			if first {
				args = append([]string{"-c"}, args...)
				first = false
			}
			if out, err := exec.Command(passwdTool(tb), args...).CombinedOutput(); err != nil {
				tb.Fatalf("mosquitto_passwd: %v: %s", err, out)
			}
		}
		os.Chmod(pw, 0o600)
		conf = append(conf, "allow_anonymous false", "password_file "+pw)
	}
	b.URL = "mqtt://" + b.Addr
	if opts.TLS {
		b.URL = "mqtts://" + b.Addr
		cert, key := b.makeCerts(dir)
		conf = append(conf, "certfile "+cert, "keyfile "+key)
	}
	b.conf = filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(b.conf, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	b.start()
	tb.Cleanup(b.Stop)
	return b
}

func passwdTool(tb testing.TB) string {
	if p, err := exec.LookPath("mosquitto_passwd"); err == nil {
		return p
	}
	return testenv.Tool(tb, "mosquitto_passwd")
}

// start runs mosquitto and waits until it takes connections.
func (b *Broker) start() {
	b.tb.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.out = &bytes.Buffer{}
	b.cmd = exec.Command(b.bin, "-c", b.conf)
	b.cmd.Stdout, b.cmd.Stderr = b.out, b.out
	if err := b.cmd.Start(); err != nil {
		b.tb.Fatal(err)
	}
	done := make(chan struct{})
	b.done = done
	go func() { b.cmd.Wait(); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", b.Addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			b.tb.Fatalf("mosquitto exited: %s", b.out)
		case <-time.After(10 * time.Millisecond): // polling the port: mosquitto tells no one it listens
		}
		if time.Now().After(deadline) {
			b.tb.Fatalf("mosquitto does not listen on %s: %s", b.Addr, b.out)
		}
	}
}

// Stop stops the broker (safe to call twice). mosquitto can lose a
// SIGINT that comes just after it starts listening (its handler clears
// the run flag that its main loop then sets: seen on a loaded machine,
// the broker ran on and the test hung), so Stop asks again until it
// exits, gracefully, so that a persistent broker saves its state.
func (b *Broker) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	for {
		b.cmd.Process.Signal(os.Interrupt)
		select {
		case <-b.done:
			b.cmd = nil
			return
		case <-time.After(time.Second): // not exited yet: ask again
		}
	}
}

// Restart stops the broker and starts it again on the same port; it
// keeps nothing unless Options.Persistent: clients must publish again.
func (b *Broker) Restart() {
	b.tb.Helper()
	b.Stop()
	b.start()
}

// Log is what mosquitto wrote so far.
func (b *Broker) Log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.String()
}

// makeCerts writes a CA and the broker's certificate for 127.0.0.1
// signed by it.
func (b *Broker) makeCerts(dir string) (certFile, keyFile string) {
	b.tb.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mqtttest CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		b.tb.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		b.tb.Fatal(err)
	}
	sum := sha256.Sum256(der)
	b.CertSHA256 = hex.EncodeToString(sum[:])
	keyDER, _ := x509.MarshalECPrivateKey(key)
	b.CAFile = filepath.Join(dir, "ca.pem")
	certFile, keyFile = filepath.Join(dir, "broker.pem"), filepath.Join(dir, "broker.key")
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{b.CAFile, "CERTIFICATE", caDER}, {certFile, "CERTIFICATE", der}, {keyFile, "EC PRIVATE KEY", keyDER}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			b.tb.Fatal(err)
		}
	}
	return certFile, keyFile
}

// Message is one message a Subscriber received.
type Message struct {
	Topic    string
	Payload  []byte
	Retained bool
	At       time.Time
}

// Subscriber is a paho client that keeps every message of its topics.
type Subscriber struct {
	tb     testing.TB
	client paho.Client
	// C gets every message too, when it has room (benchmarks read it).
	C chan Message

	mu   sync.Mutex
	msgs []Message
	wake chan struct{} // closed and replaced at each message
}

// Login is a Subscriber's user name and password (empty: anonymous).
// Session, if set, is its client ID with a session the broker keeps
// (clean session off): a Subscriber with the same Session later gets
// what was published to its topics meanwhile, across a Restart with
// Options.Persistent.
type Login struct{ User, Password, Session string }

// Subscribe connects to b and subscribes to topics (filters, with + and
// #) until the test ends.
func (b *Broker) Subscribe(login Login, topics ...string) *Subscriber {
	b.tb.Helper()
	s := &Subscriber{tb: b.tb, wake: make(chan struct{}), C: make(chan Message, 4096)}
	po := paho.NewClientOptions().AddBroker(strings.Replace(strings.Replace(b.URL, "mqtts://", "ssl://", 1), "mqtt://", "tcp://", 1)).
		SetClientID("mqtttest-" + strconv.FormatInt(time.Now().UnixNano(), 36)).
		SetUsername(login.User).SetPassword(login.Password).SetAutoReconnect(false)
	if login.Session != "" {
		// The kept session's messages come before Subscribe is called.
		po.SetClientID(login.Session).SetCleanSession(false).SetDefaultPublishHandler(s.keep)
	}
	if b.CAFile != "" {
		pool := x509.NewCertPool()
		pemBytes, _ := os.ReadFile(b.CAFile)
		pool.AppendCertsFromPEM(pemBytes)
		po.SetTLSConfig(tlsConfig(pool))
	}
	s.client = paho.NewClient(po)
	if t := s.client.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		b.tb.Fatalf("mqtttest: subscriber cannot connect: %v", t.Error())
	}
	filters := map[string]byte{}
	for _, t := range topics {
		filters[t] = 1
	}
	if t := s.client.SubscribeMultiple(filters, s.keep); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		b.tb.Fatalf("mqtttest: subscribe: %v", t.Error())
	}
	b.tb.Cleanup(func() { s.client.Disconnect(100) })
	return s
}

func (s *Subscriber) keep(_ paho.Client, m paho.Message) {
	msg := Message{Topic: m.Topic(), Payload: bytes.Clone(m.Payload()), Retained: m.Retained(), At: time.Now()}
	select {
	case s.C <- msg:
	default:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, msg)
	close(s.wake)
	s.wake = make(chan struct{})
}

// Publish publishes payload on topic (QoS 1) and waits for the broker.
func (s *Subscriber) Publish(topic string, retained bool, payload string) {
	s.tb.Helper()
	if t := s.client.Publish(topic, 1, retained, payload); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		s.tb.Fatalf("mqtttest: publish %s: %v", topic, t.Error())
	}
}

// Wait returns the first message on topic that match accepts (nil: any),
// waiting up to 20 s for it (then the test fails).
func (s *Subscriber) Wait(topic string, match func(Message) bool) Message {
	s.tb.Helper()
	m, ok := s.WaitFor(topic, 20*time.Second, match)
	if !ok {
		s.tb.Fatalf("mqtttest: no message on %s matched within 20 s; got %s", topic, s.Topics())
	}
	return m
}

// WaitFor is Wait that reports a timeout instead of failing.
func (s *Subscriber) WaitFor(topic string, timeout time.Duration, match func(Message) bool) (Message, bool) {
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		for _, m := range s.msgs {
			if m.Topic == topic && (match == nil || match(m)) {
				s.mu.Unlock()
				return m, true
			}
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-deadline:
			return Message{}, false
		}
	}
}

// Last returns the newest message on topic, if any came.
func (s *Subscriber) Last(topic string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.msgs) - 1; i >= 0; i-- {
		if s.msgs[i].Topic == topic {
			return s.msgs[i], true
		}
	}
	return Message{}, false
}

// Forget drops the messages received so far (Wait then sees only later
// ones).
func (s *Subscriber) Forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = nil
}

// Topics lists the topics received so far, for a failure's message.
func (s *Subscriber) Topics() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]int{}
	var order []string
	for _, m := range s.msgs {
		if seen[m.Topic] == 0 {
			order = append(order, m.Topic)
		}
		seen[m.Topic]++
	}
	var out []string
	for _, t := range order {
		out = append(out, fmt.Sprintf("%s×%d", t, seen[t]))
	}
	return "[" + strings.Join(out, " ") + "]"
}

func tlsConfig(pool *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}
