package logring

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func open(t *testing.T, dir string, size int64) *Ring {
	t.Helper()
	r, err := Open(dir, Options{Size: size})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRingKeepsNewestWithinSize(t *testing.T) {
	dir := t.TempDir()
	r := open(t, dir, MinSize)
	log := slog.New(r.Handler())
	for i := range 5000 {
		log.Info("line", "i", i)
	}
	es, last, err := r.Read(Query{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	if last != 5000 || es[len(es)-1].Seq != 5000 || !bytes.Contains(es[len(es)-1].Line, []byte(`"i":4999`)) {
		t.Fatalf("last = %d, newest line %s", last, es[len(es)-1].Line)
	}
	if len(es) < 100 || len(es) >= 5000 {
		t.Fatalf("kept %d lines of 5000 in %d bytes", len(es), MinSize)
	}
	for i := 1; i < len(es); i++ {
		if es[i].Seq != es[i-1].Seq+1 {
			t.Fatalf("gap: %d after %d", es[i].Seq, es[i-1].Seq)
		}
	}
	var total int64
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		fi, _ := de.Info()
		total += fi.Size()
	}
	if total > MinSize || len(des) > 2 {
		t.Fatalf("%d files of %d bytes; the ring is %d", len(des), total, MinSize)
	}
}

func TestRingSurvivesRestartAndCutLine(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	slog.New(r.Handler()).Info("before", "n", 1)
	slog.New(r.Handler()).Info("before", "n", 2)
	r.Close()
	// A power cut in the middle of a line, and the zeros a file system
	// may leave after it.
	seg := filepath.Join(dir, "00000001.jsonl")
	f, err := os.OpenFile(seg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":3,"time":"2026-01-01T00:00:00Z","lev` + "\x00\x00\x00")
	f.Close()

	r = open(t, dir, 0)
	slog.New(r.Handler()).Info("after")
	es, _, err := r.Read(Query{})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, e := range es {
		msgs = append(msgs, fmt.Sprint(e.Seq, " ", strings.Contains(string(e.Line), "after")))
	}
	if got := strings.Join(msgs, ","); got != "1 false,2 false,3 true" {
		t.Fatalf("lines after the restart: %s", got)
	}
	b, _ := os.ReadFile(seg)
	if bytes.Contains(b, []byte{0}) || bytes.Count(b, []byte{'\n'}) != 3 {
		t.Fatalf("segment not cut at its last whole line:\n%q", b)
	}
}

func TestReadFilters(t *testing.T) {
	r := open(t, t.TempDir(), 0)
	log := slog.New(r.Handler())
	log.Info("one")
	log.Warn("two")
	mid := time.Now()
	log.Error("three")
	log.Info("four")
	cases := []struct {
		q    Query
		want string
	}{
		{Query{}, "1,2,3,4"},
		{Query{Level: slog.LevelWarn}, "2,3"},
		{Query{Since: mid}, "3,4"},
		{Query{Until: mid}, "1,2"},
		{Query{Limit: 2}, "3,4"},
		{Query{After: 1, Limit: 2}, "2,3"},
		{Query{After: 4}, ""},
		{Query{Through: 2}, "1,2"},
		{Query{Through: 3, Limit: 1}, "3"},
	}
	for _, c := range cases {
		es, _, err := r.Read(c.q)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []string
		for _, e := range es {
			seqs = append(seqs, fmt.Sprint(e.Seq))
		}
		if got := strings.Join(seqs, ","); got != c.want {
			t.Errorf("Read(%+v) = %s; want %s", c.q, got, c.want)
		}
	}
	_, next, _ := r.Read(Query{After: 1, Limit: 2})
	if next != 3 {
		t.Errorf("next after a cut answer = %d; want 3", next)
	}
}

func TestWait(t *testing.T) {
	r := open(t, t.TempDir(), 0)
	done := make(chan error)
	go func() { done <- r.Wait(context.Background(), 0) }()
	slog.New(r.Handler()).Info("wake")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Wait(ctx, 1); err != context.Canceled {
		t.Fatalf("Wait with a cancelled context = %v", err)
	}
	go func() { done <- r.Wait(context.Background(), 1) }()
	r.Close()
	if err := <-done; err != ErrClosed {
		t.Fatalf("Wait across Close = %v", err)
	}
}

func TestRedact(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(Redact(slog.NewJSONHandler(&buf, nil)))
	log.With("token", "tok-with").Info("x",
		"Token", "tok-1", "pairing_secret", "sec-1", "code", "code-1", "wifi_password", "pw-1",
		"key", []byte("raw-key"), "who", Secret("sec-2"), "exit_code", 3, "payload", "CAMD:payload",
		slog.Group("g", "bearer_token", "tok-2"), "user", "alice")
	out := buf.String()
	for _, s := range []string{"tok-with", "tok-1", "sec-1", "code-1", "pw-1", "raw-key", "sec-2", "tok-2", "CAMD:payload"} {
		if strings.Contains(out, s) {
			t.Errorf("%q reached the log: %s", s, out)
		}
	}
	for _, s := range []string{`"exit_code":3`, `"user":"alice"`} {
		if !strings.Contains(out, s) {
			t.Errorf("%s missing: %s", s, out)
		}
	}
}

func TestTee(t *testing.T) {
	var a, b bytes.Buffer
	log := slog.New(Tee(slog.NewTextHandler(&a, &slog.HandlerOptions{Level: slog.LevelWarn}), slog.NewTextHandler(&b, nil)))
	log.With("k", "v").Info("info")
	log.Warn("warn")
	if strings.Contains(a.String(), "info") || !strings.Contains(a.String(), "warn") {
		t.Errorf("warn handler got:\n%s", a.String())
	}
	if !strings.Contains(b.String(), "info k=v") || !strings.Contains(b.String(), "warn") {
		t.Errorf("info handler got:\n%s", b.String())
	}
}
