package export

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	mcfmp4 "github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/camd-project/camd/media/fmp4"
	"github.com/camd-project/camd/storage/recordings"
)

// ErrClosed: the file is closed.
var ErrClosed = errors.New("export: file closed")

// clip is what a File needs of a recordings.Clip.
type clip interface {
	Parts() []recordings.Part
	Read(i int, buf []byte) ([]byte, error)
	Close() error
}

// File is a clip as one fragmented MP4 file: an io.ReadSeeker whose size
// is known up front. It is not safe for concurrent use; Close it.
type File struct {
	// Start and End are the times the file covers: the start of its
	// first fragment (a keyframe) and the end of its last.
	Start, End time.Time
	// Truncated is true when the file stops before the clip does: the
	// tracks changed there (audio turned on or off), or a fragment has
	// no init segment.
	Truncated bool

	c      clip
	init   []byte
	parts  []recordings.Part
	offs   []int64 // where each part starts in the file
	size   int64
	pos    int64
	shift  map[uint32]uint64 // per track, in its timescale
	cur    int               // the part in data, or -1
	data   []byte
	closed bool
}

// New makes the file of c, which it takes over: closing the File closes
// c, and New closes it when it fails. A clip whose first fragment has no
// init segment fails with recordings.ErrNoRecording.
func New(c clip) (*File, error) {
	f := &File{c: c, cur: -1}
	if err := f.prepare(); err != nil {
		c.Close()
		return nil, err
	}
	return f, nil
}

func (f *File) prepare() error {
	parts := f.c.Parts()
	// One file holds one set of tracks: it stops where they change.
	sig := map[string]string{}
	var want string
	for i, p := range parts {
		if p.Init == nil {
			parts, f.Truncated = parts[:i], true
			break
		}
		ts, ok := sig[string(p.Init)]
		if !ok {
			ts = trackSignature(p.Init)
			sig[string(p.Init)] = ts
		}
		if i == 0 {
			want, f.init = ts, p.Init
		} else if ts != want {
			parts, f.Truncated = parts[:i], true
			break
		}
	}
	if len(parts) == 0 {
		return fmt.Errorf("%w: no init segment for the first fragment", recordings.ErrNoRecording)
	}
	f.parts = parts
	f.offs = make([]int64, len(parts))
	off := int64(len(f.init))
	for i, p := range parts {
		f.offs[i] = off
		off += int64(p.Size)
	}
	f.size = off
	f.Start, f.End = parts[0].Start, parts[len(parts)-1].End()

	// Retime so that the earliest track of the first fragment starts at 0.
	data, err := f.c.Read(0, nil)
	if err != nil {
		return err
	}
	base, err := fmp4.BaseTimes(data)
	if err != nil {
		return err
	}
	baseNs := int64(-1)
	for track, t := range base {
		ts := uint64(timescale(track))
		ns := int64(t/ts)*1e9 + int64(t%ts)*1e9/int64(ts)
		if baseNs < 0 || ns < baseNs {
			baseNs = ns
		}
	}
	f.shift = map[uint32]uint64{}
	for _, track := range []uint32{fmp4.VideoTrack, fmp4.AudioTrack} {
		ts := uint64(timescale(track))
		u := uint64(max(baseNs, 0))
		f.shift[track] = u/1e9*ts + u%1e9*ts/1e9
	}
	return nil
}

func timescale(track uint32) int64 {
	if track == fmp4.AudioTrack {
		return fmp4.AudioTimescale
	}
	return fmp4.VideoTimescale
}

// trackSignature names an init segment's tracks: ID, timescale and codec.
func trackSignature(in []byte) string {
	var init mcfmp4.Init
	if err := init.Unmarshal(bytes.NewReader(in)); err != nil {
		return "unreadable:" + err.Error()
	}
	var b strings.Builder
	for _, t := range init.Tracks {
		fmt.Fprintf(&b, "%d:%d:%T;", t.ID, t.TimeScale, t.Codec)
	}
	return b.String()
}

// Size is the length of the file in bytes.
func (f *File) Size() int64 { return f.size }

// Fragments is the number of fragments in the file.
func (f *File) Fragments() int { return len(f.parts) }

// Read reads the file.
func (f *File) Read(p []byte) (int, error) {
	if f.closed {
		return 0, ErrClosed
	}
	if f.pos >= f.size {
		return 0, io.EOF
	}
	if f.pos < int64(len(f.init)) {
		n := copy(p, f.init[f.pos:])
		f.pos += int64(n)
		return n, nil
	}
	i := sort.Search(len(f.parts), func(i int) bool { return f.offs[i]+int64(f.parts[i].Size) > f.pos })
	if i != f.cur {
		f.cur = -1
		data, err := f.c.Read(i, f.data[:0])
		if err != nil {
			return 0, err
		}
		f.data = data
		if err := fmp4.Retime(data, uint32(i+1), func(track uint32) uint64 { return f.shift[track] }); err != nil {
			return 0, err
		}
		f.cur = i
	}
	n := copy(p, f.data[f.pos-f.offs[i]:])
	f.pos += int64(n)
	return n, nil
}

// Seek moves the read offset.
func (f *File) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.pos
	case io.SeekEnd:
		offset += f.size
	default:
		return 0, errors.New("export: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("export: seek before the start")
	}
	f.pos = offset
	return offset, nil
}

// Close closes the clip. It is safe to call twice.
func (f *File) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	if f.c == nil {
		return nil // a File made by hand, with no clip
	}
	return f.c.Close()
}
