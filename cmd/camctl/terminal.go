package main

import (
	"fmt"
	"io"
	"unicode"
	"unicode/utf8"
)

// Text from the network (camera and user names, mDNS and WS-Discovery
// answers, error messages) reaches the terminal through a terminalWriter:
// a hostile camera or LAN neighbour must not move the cursor, rewrite the
// screen, set the window title or reorder what is shown.

// terminalWriter escapes what a terminal would act on rather than show:
// C0 controls but newline and tab, DEL, C1 controls (which some terminals
// take raw or UTF-8 encoded), format characters (Unicode Cf: bidi
// overrides and isolates, zero-width joiners) and bytes that are not
// UTF-8. A rune becomes \u00XX / \u202E, which is also a valid escape
// inside a JSON string, so JSON output stays JSON; a bad byte becomes
// \xNN. Runes split across writes are held until complete.
type terminalWriter struct {
	w       io.Writer
	pending []byte // the start of a rune cut by the end of the last write
	buf     []byte
}

func newTerminalWriter(w io.Writer) *terminalWriter { return &terminalWriter{w: w} }

// raw is the writer under a terminalWriter, for camctl's own control
// characters (the progress bar's carriage return).
func raw(w io.Writer) io.Writer {
	if t, ok := w.(*terminalWriter); ok {
		return t.w
	}
	return w
}

func (t *terminalWriter) Write(p []byte) (int, error) {
	n := len(p)
	if len(t.pending) > 0 {
		p = append(t.pending, p...)
		t.pending = nil
	}
	t.buf = t.buf[:0]
	for len(p) > 0 {
		r, size := utf8.DecodeRune(p)
		if r == utf8.RuneError && size <= 1 {
			if !utf8.FullRune(p) {
				t.pending = append(t.pending, p...) // wait for the rest
				break
			}
			t.buf = fmt.Appendf(t.buf, `\x%02x`, p[0])
			p = p[1:]
			continue
		}
		if dangerous(r) {
			t.buf = fmt.Appendf(t.buf, `\u%04X`, r)
		} else {
			t.buf = append(t.buf, p[:size]...)
		}
		p = p[size:]
	}
	if _, err := t.w.Write(t.buf); err != nil {
		return 0, err
	}
	return n, nil
}

// dangerous reports whether a terminal might act on r instead of showing
// it.
func dangerous(r rune) bool {
	switch {
	case r == '\n' || r == '\t':
		return false
	case r < 0x20 || r == 0x7f: // C0, DEL
		return true
	case r >= 0x80 && r <= 0x9f: // C1
		return true
	}
	return unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029'
}
