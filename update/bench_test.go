package update_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/camd-project/camd/update"
	"github.com/camd-project/camd/update/updatetest"
)

// Downloading and verifying a 30 MB image from an HTTPS server on
// loopback (in this process: its TLS and reads count too): MB/s, and the
// process's peak RSS above what it held before the apply (the goal is
// streaming: at most 2 MB more).
func BenchmarkDownloadVerify30MB(b *testing.B) {
	const size = 30 << 20
	feed := updatetest.NewFeed(b)
	// The image is made in 64 KiB pieces: the benchmark's process never
	// holds it whole.
	f, err := os.Create(filepath.Join(b.TempDir(), "image"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	piece := make([]byte, 64<<10)
	for range size / len(piece) {
		rand.Read(piece)
		f.Write(piece)
		h.Write(piece)
	}
	m := updatetest.Manifest("1.1.0", 1, nil)
	m.Image.Size, m.Image.SHA256 = size, hex.EncodeToString(h.Sum(nil))
	feed.Publish(m, nil)
	feed.SetImage(f, size)

	b.SetBytes(size)
	b.ReportAllocs()
	var extra int64
	for range b.N {
		b.StopTimer()
		events := newEvents()
		u, err := update.New(update.Options{
			FeedURL: feed.URL(), Keys: []minisign.PublicKey{feed.Key}, Version: "1.0.0", Dir: b.TempDir(),
			Client: feed.Client(), Events: events, InstallCommand: []string{"true"},
		})
		if err != nil {
			b.Fatal(err)
		}
		u.SetEnabled(true)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { u.Run(ctx); close(done) }()
		if _, err := u.Check(ctx); err != nil {
			b.Fatal(err)
		}
		debug.FreeOSMemory()
		before := resetPeakRSS(b)
		b.StartTimer()
		if err := u.Apply("1.1.0"); err != nil {
			b.Fatal(err)
		}
		for u.Status().Pending == nil {
			select {
			case <-events.more:
			case <-time.After(time.Minute):
				b.Fatalf("no install: %+v, events %v", u.Status(), events.kinds())
			}
		}
		b.StopTimer()
		extra = max(extra, procStatus(b, "VmHWM")-before)
		cancel()
		<-done
	}
	b.ReportMetric(float64(extra)/(1<<20), "extra-RSS-MB")
}

// resetPeakRSS resets VmHWM to the current RSS (Linux: clear_refs 5) and
// returns the RSS.
func resetPeakRSS(b *testing.B) int64 {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Skipf("cannot reset the peak RSS: %v", err)
	}
	return procStatus(b, "VmRSS")
}

// procStatus reads a /proc/self/status field in bytes.
func procStatus(b *testing.B, field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Skip(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	b.Skipf("no %s in /proc/self/status", field)
	return 0
}
