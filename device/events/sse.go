package events

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Frame is one block of a server-sent event stream: an event (ID, Event
// when it is not a plain message, Data), or a comment. camd's stream
// sends each event's JSON on one data line; Data joins several with
// "\n", as the format says.
type Frame struct {
	ID, Event, Data string
	// Comment is the text of a comment line (": heartbeat"), for a
	// block that is only comments.
	Comment string
}

// IsEvent reports whether f carries an event rather than only comments.
func (f Frame) IsEvent() bool { return f.Data != "" || f.Event != "" || f.ID != "" }

// ErrLineTooLong: a line of the stream is longer than MaxLine.
var ErrLineTooLong = errors.New("events: stream line too long")

// MaxLine bounds a line of a stream a Reader reads.
const MaxLine = 1 << 20

// Reader reads a server-sent event stream (text/event-stream): the
// client side of GET /api/v1/events/stream, for camctl and tests.
type Reader struct {
	rd *bufio.Reader
}

// NewReader reads the stream r.
func NewReader(r io.Reader) *Reader { return &Reader{rd: bufio.NewReaderSize(r, 64<<10)} }

// Next returns the next frame; io.EOF at the end of the stream (a frame
// cut short by the end is dropped, as the format says).
func (r *Reader) Next() (Frame, error) {
	var f Frame
	var data [][]byte
	seen := false
	for {
		line, err := r.line()
		if err != nil {
			return Frame{}, err
		}
		if len(line) == 0 {
			if !seen {
				continue
			}
			f.Data = string(bytes.Join(data, []byte("\n")))
			return f, nil
		}
		seen = true
		field, value, found := bytes.Cut(line, []byte(":"))
		if found {
			value = bytes.TrimPrefix(value, []byte(" "))
		}
		switch string(field) {
		case "":
			if f.Comment == "" {
				f.Comment = string(value)
			}
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				f.ID = string(value)
			}
		case "event":
			f.Event = string(value)
		case "data":
			data = append(data, value)
		}
	}
}

// line reads one line without its end (LF, CR LF or CR).
func (r *Reader) line() ([]byte, error) {
	var line []byte
	for {
		buf, err := r.rd.Peek(max(r.rd.Buffered(), 1))
		if len(buf) == 0 {
			if err == io.EOF && len(line) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		end := bytes.IndexAny(buf, "\r\n")
		if end < 0 {
			end = len(buf)
		}
		if len(line)+end > MaxLine {
			return nil, fmt.Errorf("%w (more than %d bytes)", ErrLineTooLong, MaxLine)
		}
		line = append(line, buf[:end]...)
		if end == len(buf) {
			r.rd.Discard(end)
			continue
		}
		cr := buf[end] == '\r'
		r.rd.Discard(end + 1)
		if cr {
			if next, err := r.rd.Peek(1); err == nil && next[0] == '\n' {
				r.rd.Discard(1)
			}
		}
		return line, nil
	}
}
