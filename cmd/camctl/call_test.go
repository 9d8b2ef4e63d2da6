package main

import (
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCallVerbs: ring prints the call's ID; decline takes the ringing
// call and says busy; hangup ends the call in progress; watch prints the
// ring events of the stream.
func TestCallVerbs(t *testing.T) {
	var declined map[string]string
	hungUp := false
	cam := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Header.Get("Authorization") != "Bearer t":
			w.WriteHeader(http.StatusUnauthorized)
		case r.Method == "POST" && r.URL.Path == "/api/v1/calls":
			w.WriteHeader(http.StatusCreated)
			w.Write([]byte(`{"id": "c1", "state": "ringing", "source": "api"}`))
		case r.Method == "GET" && r.URL.Path == "/api/v1/calls":
			w.Write([]byte(`{"current": {"id": "c1", "state": "ringing"}, "history": []}`))
		case r.Method == "POST" && r.URL.Path == "/api/v1/calls/c1/decline":
			json.NewDecoder(r.Body).Decode(&declined)
			w.Write([]byte(`{"id": "c1", "state": "busy"}`))
		case r.Method == "DELETE" && r.URL.Path == "/api/v1/calls/c1":
			hungUp = true
			w.Write([]byte(`{"id": "c1", "state": "ended"}`))
		case r.URL.Path == "/api/v1/events/stream":
			if got := r.URL.Query().Get("type"); got != "call.*,doorbell.*" {
				t.Errorf("watch asks for %q", got)
			}
			w.Header().Set("Content-Type", "text/event-stream")
			w.Write([]byte(": camd events\n\nid: 7\ndata: {\"id\":7,\"time\":\"2026-12-07T08:00:00Z\",\"type\":\"call.ringing\",\"data\":{\"call\":\"c1\",\"source\":\"doorbell\"}}\n\n" +
				"event: closed\ndata: {\"reason\":\"camd stopping\"}\n\n"))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer cam.Close()
	storePath := pairedWith(t, cam)
	if code, out, errOut := camctlRun(storePath, "call", "ring"); code != 0 || strings.TrimSpace(out) != "c1" {
		t.Fatalf("ring: %d %q %s", code, out, errOut)
	}
	if code, out, errOut := camctlRun(storePath, "call", "decline", "--busy"); code != 0 || !strings.Contains(out, "c1 busy") || declined["reason"] != "busy" {
		t.Fatalf("decline: %d %q %s (sent %v)", code, out, errOut, declined)
	}
	if code, out, errOut := camctlRun(storePath, "call", "hangup"); code != 0 || !strings.Contains(out, "c1 ended") || !hungUp {
		t.Fatalf("hangup: %d %q %s", code, out, errOut)
	}
	if code, _, errOut := camctlRun(storePath, "call", "hangup", "c2"); code != 1 || !strings.Contains(errOut, "404") {
		t.Fatalf("hangup of an unknown call: %d %s", code, errOut)
	}
	code, out, errOut := camctlRun(storePath, "call", "watch")
	if !strings.Contains(out, `call.ringing call="c1" source="doorbell"`) || code != 1 || !strings.Contains(errOut, "camd stopping") {
		t.Fatalf("watch: %d %q %s", code, out, errOut)
	}
	for _, args := range [][]string{{"call", "bogus"}, {"call", "answer", "c1", "c2"}, {"call", "ring", "c1"}} {
		if code, _, errOut := camctlRun(storePath, args...); code != 2 || !strings.Contains(errOut, "usage:") {
			t.Errorf("%v: %d %s", args, code, errOut)
		}
	}
}

func TestReadWAV(t *testing.T) {
	dir := t.TempDir()
	wav := func(rate uint32, channels uint16, samples []int16) string {
		var b []byte
		b = append(b, "RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00"...)
		b = binary.LittleEndian.AppendUint16(b, 1)
		b = binary.LittleEndian.AppendUint16(b, channels)
		b = binary.LittleEndian.AppendUint32(b, rate)
		b = binary.LittleEndian.AppendUint32(b, rate*2*uint32(channels))
		b = binary.LittleEndian.AppendUint16(b, 2*channels)
		b = binary.LittleEndian.AppendUint16(b, 16)
		b = append(b, "data"...)
		b = binary.LittleEndian.AppendUint32(b, uint32(2*len(samples)))
		for _, s := range samples {
			b = binary.LittleEndian.AppendUint16(b, uint16(s))
		}
		p := filepath.Join(dir, "t.wav")
		os.WriteFile(p, b, 0o600)
		return p
	}
	pcm, err := readWAV(wav(48000, 1, []int16{1, -2, 3}))
	if err != nil || len(pcm) != 3 || pcm[1] != -2 {
		t.Fatalf("%v %v", pcm, err)
	}
	if _, err := readWAV(wav(8000, 1, []int16{1})); err == nil || !strings.Contains(err.Error(), "want 48000 Hz mono") {
		t.Fatalf("8 kHz: %v", err)
	}
	if _, err := readWAV(wav(48000, 2, []int16{1, 2})); err == nil {
		t.Fatal("stereo accepted")
	}
}

// TestWAVFileReadsBack: what answer --listen OUT.wav writes reads back
// as the samples written, with the sizes filled in at close.
func TestWAVFileReadsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "heard.wav")
	w, err := createWAV(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []int16{0, 1, -1, 32767, -32768, 1234}
	w.write(want[:3])
	w.write(want[3:])
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	got, err := readWAV(path)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("read back %v %v, want %v", got, err, want)
	}
}
