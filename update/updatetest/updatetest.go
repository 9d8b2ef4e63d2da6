package updatetest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/camd-project/camd/update"
)

// Feed is an update server: a signed manifest at URL(), its signature
// beside it, and the image at /image. Its zero value is not usable: call
// NewFeed.
type Feed struct {
	Server *httptest.Server
	// Key is the public key of the feed's signing key, to trust.
	Key  minisign.PublicKey
	priv minisign.PrivateKey

	mu       sync.Mutex
	doc, sig []byte
	image    io.ReaderAt
	size     int64
	cutAt    int64         // >0: answer only this many bytes of the image, then drop
	gate     chan struct{} // not nil: the image's answers stop at gateAt until closed
	gateAt   int64
	requests []string // "METHOD PATH RANGE"
}

// NewFeed starts an HTTPS update server on loopback with a new signing
// key; it stops with the test.
func NewFeed(t testing.TB) *Feed {
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &Feed{Key: pub, priv: priv}
	f.Server = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Server.Close)
	return f
}

// URL is the feed's URL (update.feed_url).
func (f *Feed) URL() string { return f.Server.URL + "/feed.json" }

// Client trusts the server's certificate.
func (f *Feed) Client() *http.Client { return f.Server.Client() }

// Image makes an image for version: a first line naming it (what FakeAB
// reads as the slot's version), then size bytes in all.
func Image(version string, size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	copy(b, "camd-image version="+version+"\n")
	return b
}

// Manifest is a valid manifest for image: product camd, issued now,
// expiring in a week.
func Manifest(version string, serial uint64, image []byte) update.Manifest {
	sum := sha256.Sum256(image)
	return update.Manifest{
		Product: "camd", Serial: serial, Version: version,
		Issued: time.Now().UTC().Truncate(time.Second), Expires: time.Now().Add(7 * 24 * time.Hour).UTC().Truncate(time.Second),
		Notes: "camd " + version + ": fixes",
		Image: update.Image{URL: "image", Size: int64(len(image)), SHA256: hex.EncodeToString(sum[:])},
	}
}

// Sign returns m as the feed's document and its signature by key.
func Sign(key minisign.PrivateKey, m update.Manifest) (doc, sig []byte) {
	doc, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		panic(err)
	}
	return doc, minisign.Sign(key, doc)
}

// Publish serves m signed with the feed's key, and image.
func (f *Feed) Publish(m update.Manifest, image []byte) {
	doc, sig := Sign(f.priv, m)
	f.PublishRaw(doc, sig)
	f.SetImage(bytes.NewReader(image), int64(len(image)))
}

// PublishRaw serves doc and sig as they are (a forged or replayed feed).
func (f *Feed) PublishRaw(doc, sig []byte) {
	f.mu.Lock()
	f.doc, f.sig = doc, sig
	f.mu.Unlock()
}

// Signed returns m signed with the feed's key, without serving it.
func (f *Feed) Signed(m update.Manifest) (doc, sig []byte) { return Sign(f.priv, m) }

// SetImage serves r (of size bytes) as the image.
func (f *Feed) SetImage(r io.ReaderAt, size int64) {
	f.mu.Lock()
	f.image, f.size = r, size
	f.mu.Unlock()
}

// CutAt makes the image's answers end after n bytes of the image, the
// connection dropped (0: whole answers).
func (f *Feed) CutAt(n int64) {
	f.mu.Lock()
	f.cutAt = n
	f.mu.Unlock()
}

// HoldAt makes the image's answers stop at byte n until the returned
// function is called.
func (f *Feed) HoldAt(n int64) (release func()) {
	gate := make(chan struct{})
	f.mu.Lock()
	f.gate, f.gateAt = gate, n
	f.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(gate) }) }
}

// Requests lists the requests served: "GET /feed.json", "GET /image
// bytes=N-".
func (f *Feed) Requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

func (f *Feed) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, strings.TrimSpace(r.Method+" "+r.URL.Path+" "+r.Header.Get("Range")))
	doc, sig, image, size, cut, gate, gateAt := f.doc, f.sig, f.image, f.size, f.cutAt, f.gate, f.gateAt
	f.mu.Unlock()
	switch r.URL.Path {
	case "/feed.json":
		w.Write(doc)
	case "/feed.json.minisig":
		w.Write(sig)
	case "/image":
		if image == nil {
			http.NotFound(w, r)
			return
		}
		start := int64(0)
		if rg, ok := strings.CutPrefix(r.Header.Get("Range"), "bytes="); ok {
			start, _ = strconv.ParseInt(strings.TrimSuffix(rg, "-"), 10, 64)
		}
		body := &gated{w: w, at: start, cut: cut, gate: gate, gateAt: gateAt}
		http.ServeContent(body, r, "image", time.Time{}, io.NewSectionReader(image, 0, size))
		if body.dropped {
			panic(http.ErrAbortHandler)
		}
	default:
		http.NotFound(w, r)
	}
}

// gated writes an image's answer, stopping at the gate or the cut.
type gated struct {
	w       http.ResponseWriter
	at      int64 // image offset of the next byte
	cut     int64
	gate    chan struct{}
	gateAt  int64
	dropped bool
}

func (g *gated) Header() http.Header { return g.w.Header() }
func (g *gated) WriteHeader(c int)   { g.w.WriteHeader(c) }

func (g *gated) Write(p []byte) (int, error) {
	if g.dropped {
		return 0, http.ErrAbortHandler
	}
	n := 0
	for len(p) > 0 {
		chunk := p
		if g.gate != nil && g.at < g.gateAt && g.at+int64(len(chunk)) > g.gateAt {
			chunk = chunk[:g.gateAt-g.at]
		}
		if g.cut > 0 && g.at+int64(len(chunk)) > g.cut {
			chunk = chunk[:max(g.cut-g.at, 0)]
		}
		if len(chunk) > 0 {
			k, err := g.w.Write(chunk)
			n += k
			g.at += int64(k)
			if err != nil {
				return n, err
			}
		}
		p = p[len(chunk):]
		if g.cut > 0 && g.at >= g.cut && len(p) > 0 {
			g.w.(http.Flusher).Flush()
			g.dropped = true
			return n, http.ErrAbortHandler
		}
		if g.gate != nil && g.at == g.gateAt && len(p) > 0 {
			g.w.(http.Flusher).Flush()
			<-g.gate
			g.gate = nil
		}
	}
	return n, nil
}

// FakeAB is a fake A/B slot layout in a directory, changed by the
// commands of fakeab.sh as RAUC would change a device's.
type FakeAB struct {
	Dir    string
	script string
}

//go:embed fakeab.sh
var fakeab []byte

// NewFakeAB makes a layout whose slot a, booted and marked good, holds
// an image of version.
func NewFakeAB(t testing.TB, version string) *FakeAB {
	dir := t.TempDir()
	ab := &FakeAB{Dir: dir, script: filepath.Join(dir, "fakeab.sh")}
	for name, content := range map[string][]byte{
		"fakeab.sh": fakeab, "slot-a": Image(version, 64), "booted": []byte("a\n"), "primary": []byte("a\n"),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return ab
}

// Command is the hook for verb: install (the image's path appended),
// mark-good, rollback, reboot.
func (ab *FakeAB) Command(verb string) []string { return []string{"/bin/sh", ab.script, ab.Dir, verb} }

// Fail makes verb's command fail (or succeed again).
func (ab *FakeAB) Fail(verb string, fail bool) {
	p := filepath.Join(ab.Dir, "fail-"+verb)
	if fail {
		os.WriteFile(p, nil, 0o644)
	} else {
		os.Remove(p)
	}
}

// Booted is the slot running ("a" or "b"), Primary the one marked good.
func (ab *FakeAB) Booted() string  { return ab.read("booted") }
func (ab *FakeAB) Primary() string { return ab.read("primary") }

// Reboots counts the reboot command's runs.
func (ab *FakeAB) Reboots() int { return strings.Count(ab.read("reboots"), "reboot") }

// Version is the version of the image in the booted slot.
func (ab *FakeAB) Version() string {
	line, _, _ := strings.Cut(ab.read("slot-"+ab.Booted()), "\n")
	v, ok := strings.CutPrefix(line, "camd-image version=")
	if !ok {
		return fmt.Sprintf("unknown (%q)", line)
	}
	return v
}

func (ab *FakeAB) read(name string) string {
	b, _ := os.ReadFile(filepath.Join(ab.Dir, name))
	return strings.TrimSpace(string(b))
}
