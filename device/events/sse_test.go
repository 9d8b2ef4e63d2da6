package events

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReader(t *testing.T) {
	stream := ": camd events\nretry: 2000\n\n" +
		"id: 7\ndata: {\"id\":7}\n\n" +
		": heartbeat\r\n\r\n" +
		"id:8\r\ndata:a\r\ndata: b\rdata\r\r" +
		"event: overflow\ndata: {\"reason\":\"behind\"}\n\n" +
		"id: 9\ndata: cut short"
	r := NewReader(strings.NewReader(stream))
	want := []Frame{
		{Comment: "camd events"},
		{ID: "7", Data: `{"id":7}`},
		{Comment: "heartbeat"},
		{ID: "8", Data: "a\nb\n"},
		{Event: "overflow", Data: `{"reason":"behind"}`},
	}
	for i, w := range want {
		f, err := r.Next()
		if err != nil || f != w {
			t.Fatalf("frame %d: %+v %v, want %+v", i, f, err, w)
		}
		if f.IsEvent() != (w.Comment == "") {
			t.Errorf("frame %d: IsEvent %v", i, f.IsEvent())
		}
	}
	if f, err := r.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a frame cut short: %+v %v", f, err)
	}
	if _, err := NewReader(strings.NewReader("data: " + strings.Repeat("x", MaxLine))).Next(); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("a long line: %v", err)
	}
	if _, err := NewReader(strings.NewReader("\n\n")).Next(); err != io.EOF {
		t.Fatalf("nothing: %v", err)
	}
}

// The reader never fails but with the end of its input or a line too
// long, and what it returns holds no line break but in Data.
func FuzzReader(f *testing.F) {
	f.Add("id: 1\ndata: {}\n\n: heartbeat\n\n")
	f.Add("event: closed\r\ndata: x\r\n\r\n")
	f.Add("data\rdata:\r\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		r := NewReader(strings.NewReader(s))
		for range len(s) + 1 {
			fr, err := r.Next()
			if err != nil {
				if err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrLineTooLong) {
					t.Fatalf("error %v", err)
				}
				return
			}
			if strings.ContainsAny(fr.ID+fr.Event+fr.Comment, "\r\n") {
				t.Fatalf("a line break in %+v", fr)
			}
		}
		t.Fatal("more frames than bytes")
	})
}
