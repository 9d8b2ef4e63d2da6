package export

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	mcfmp4 "github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/camd-project/camd/media/fmp4"
	"github.com/camd-project/camd/media/fmp4/fmp4test"
	"github.com/camd-project/camd/storage"
	"github.com/camd-project/camd/storage/recordings"
)

var day = time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)

// fragments cuts d of src into fragments, as the recorder does.
func fragments(src *fmp4test.Source, d time.Duration) []*fmp4.Fragment {
	fr := fmp4.New(fmp4.Options{})
	var out []*fmp4.Fragment
	for _, f := range src.Frames(d) {
		if frag := fr.Push(f); frag != nil {
			out = append(out, frag)
		}
	}
	if frag := fr.Flush(); frag != nil {
		out = append(out, frag)
	}
	return out
}

// fakeClip is a clip in memory: the fragments' bytes as the store would
// hand them out.
type fakeClip struct {
	parts  []recordings.Part
	data   [][]byte
	fail   error // what Read returns, if set
	reads  int
	closed int
}

func clipOf(frags []*fmp4.Fragment) *fakeClip {
	c := &fakeClip{}
	for _, f := range frags {
		c.parts = append(c.parts, recordings.Part{Start: f.Start, Duration: f.Duration, Key: f.Key, Audio: f.AudioFrames > 0,
			Size: len(f.Data), Init: f.Init.Data})
		c.data = append(c.data, bytes.Clone(f.Data))
	}
	return c
}

func (c *fakeClip) Parts() []recordings.Part { return c.parts }

func (c *fakeClip) Read(i int, buf []byte) ([]byte, error) {
	c.reads++
	if c.fail != nil {
		return buf, c.fail
	}
	return append(buf, c.data[i]...), nil
}

func (c *fakeClip) Close() error { c.closed++; return nil }

// checkMP4 parses an exported file: an init segment with both tracks and
// fragments numbered from 1 whose times start at 0 and continue for dur.
func checkMP4(t testing.TB, b []byte, dur time.Duration) {
	t.Helper()
	var init mcfmp4.Init
	if err := init.Unmarshal(bytes.NewReader(b)); err != nil {
		t.Fatalf("init: %v", err)
	}
	if len(init.Tracks) != 2 {
		t.Fatalf("%d tracks", len(init.Tracks))
	}
	i := bytes.Index(b, []byte("moof")) - 4
	var parts mcfmp4.Parts
	if err := parts.Unmarshal(b[i:]); err != nil {
		t.Fatalf("fragments: %v", err)
	}
	var end uint64
	for n, p := range parts {
		if p.SequenceNumber != uint32(n+1) {
			t.Fatalf("fragment %d numbered %d", n, p.SequenceNumber)
		}
		for _, tr := range p.Tracks {
			if tr.ID != fmp4.VideoTrack {
				continue
			}
			if n == 0 && tr.BaseTime > 90000/10 {
				t.Errorf("video starts at %d ticks", tr.BaseTime)
			}
			if n > 0 && tr.BaseTime != end {
				t.Errorf("fragment %d video at %d, want %d", n, tr.BaseTime, end)
			}
			end = tr.BaseTime
			for _, s := range tr.Samples {
				end += uint64(s.Duration)
			}
		}
	}
	if got := time.Duration(end) * time.Second / 90000; got < dur-50*time.Millisecond || got > dur+50*time.Millisecond {
		t.Errorf("video lasts %v, export says %v", got, dur)
	}
}

// TestFileIsOneMP4: the init segment and the fragments, numbered and
// timed from zero, of the size said up front; a byte range read after a
// seek is the same bytes as in the whole file.
func TestFileIsOneMP4(t *testing.T) {
	frags := fragments(&fmp4test.Source{Audio: true, Start: day, FrameBytes: 2000}, 10*time.Second)
	c := clipOf(frags)
	f, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !f.Start.Equal(day) || !f.End.Equal(frags[len(frags)-1].End()) || f.Truncated || f.Fragments() != len(frags) {
		t.Fatalf("file %v to %v, %d fragments, truncated %v", f.Start, f.End, f.Fragments(), f.Truncated)
	}
	want := int64(len(frags[0].Init.Data))
	for _, fr := range frags {
		want += int64(len(fr.Data))
	}
	if f.Size() != want {
		t.Fatalf("size %d, want %d", f.Size(), want)
	}
	b, err := io.ReadAll(f)
	if err != nil || int64(len(b)) != f.Size() {
		t.Fatalf("read %d of %d: %v", len(b), f.Size(), err)
	}
	checkMP4(t, b, f.End.Sub(f.Start))
	for _, off := range []int64{0, 100, int64(len(b)) / 3, int64(len(b)) - 10} {
		f.Seek(off, io.SeekStart)
		p := make([]byte, 5000)
		n, _ := io.ReadFull(f, p)
		if !bytes.Equal(p[:n], b[off:off+int64(n)]) {
			t.Errorf("read at %d differs", off)
		}
	}
	// A range inside one fragment reads that fragment alone, once.
	reads := c.reads
	for range 2 {
		f.Seek(f.offs[2]+10, io.SeekStart)
		if n, err := io.ReadFull(f, make([]byte, 1000)); n != 1000 || err != nil {
			t.Fatalf("read in the third fragment: %d %v", n, err)
		}
	}
	if c.reads != reads+1 {
		t.Errorf("two ranges within the third fragment read %d fragments", c.reads-reads)
	}
	f.Close()
	f.Close()
	if c.closed != 1 {
		t.Errorf("the clip was closed %d times", c.closed)
	}
	if _, err := f.Read(make([]byte, 10)); !errors.Is(err, ErrClosed) {
		t.Errorf("read after close: %v", err)
	}
}

// TestFileStopsWhereTracksChange: audio turned on half way changes the
// tracks: the file holds the first half and says it is truncated; a
// fragment with no init segment ends it too, and a clip that starts with
// one has nothing to export.
func TestFileStopsWhereTracksChange(t *testing.T) {
	video := fragments(&fmp4test.Source{Start: day}, 5*time.Second)
	withAudio := fragments(&fmp4test.Source{Audio: true, Start: video[len(video)-1].End()}, 5*time.Second)
	f, err := New(clipOf(append(video, withAudio...)))
	if err != nil {
		t.Fatal(err)
	}
	if !f.Truncated || f.Fragments() != len(video) || !f.End.Equal(video[len(video)-1].End()) {
		t.Fatalf("truncated %v, %d fragments of %d, end %v", f.Truncated, f.Fragments(), len(video), f.End)
	}
	f.Close()

	c := clipOf(video)
	c.parts[3].Init = nil
	if f, err = New(c); err != nil || !f.Truncated || f.Fragments() != 3 {
		t.Fatalf("no init segment in the middle: %v, %d fragments", err, f.Fragments())
	}
	f.Close()
	c = clipOf(video)
	c.parts[0].Init = nil
	if _, err := New(c); !errors.Is(err, recordings.ErrNoRecording) || c.closed != 1 {
		t.Fatalf("no init segment at the start: %v, clip closed %d times", err, c.closed)
	}
}

// TestReadErrorsReachTheReader: a fragment the store cannot read fails
// New (the first fragment) or the Read over it.
func TestReadErrorsReachTheReader(t *testing.T) {
	frags := fragments(&fmp4test.Source{Start: day}, 5*time.Second)
	bad := errors.New("recordings: the card cannot read this")
	c := clipOf(frags)
	c.fail = bad
	if _, err := New(c); !errors.Is(err, bad) || c.closed != 1 {
		t.Fatalf("New over a bad first fragment: %v, clip closed %d times", err, c.closed)
	}
	c = clipOf(frags)
	f, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c.fail = bad
	f.Seek(f.Size()/2, io.SeekStart)
	if _, err := f.Read(make([]byte, 100)); !errors.Is(err, bad) {
		t.Fatalf("read over a bad fragment: %v", err)
	}
}

// storeOf records d of src in a store in a temporary directory.
func storeOf(tb testing.TB, opts recordings.Options, src *fmp4test.Source, d time.Duration) *recordings.Store {
	tb.Helper()
	dir := tb.TempDir()
	cat, err := storage.OpenCatalog(filepath.Join(dir, "catalog.db"), storage.CatalogOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	opts.Dir = filepath.Join(dir, "recordings")
	s, err := recordings.Open(cat, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close(); cat.Close() })
	record(tb, s, src, d)
	return s
}

// record records the next d of src in s, as stream 1.
func record(tb testing.TB, s *recordings.Store, src *fmp4test.Source, d time.Duration) {
	tb.Helper()
	for _, f := range fragments(src, d) {
		err := s.Append(recordings.Fragment{Stream: 1, Start: f.Start, Duration: f.Duration, Key: f.Key,
			Audio: f.AudioFrames > 0, Init: f.Init.Data, Data: f.Data})
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// TestExportOfARecording exports a range of a store's recording: it
// starts at the keyframe at or before the range and is one MP4 file,
// readable after recording overwrote its volumes.
func TestExportOfARecording(t *testing.T) {
	src := &fmp4test.Source{Audio: true, Start: day, FrameBytes: 3000}
	s := storeOf(t, recordings.Options{VolumeSize: 1 << 20, Quota: recordings.Quota{Bytes: 5 << 20}}, src, 30*time.Second)
	from := day.Add(10*time.Second + 300*time.Millisecond)
	c, err := s.Clip(1, from, day.Add(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if d := from.Sub(f.Start); d < 0 || d > fmp4.New(fmp4.Options{}).Options().Max {
		t.Errorf("export starts %v before the range", d)
	}
	// Recording goes on and overwrites the volumes being exported.
	record(t, s, src, 120*time.Second)
	if _, err := s.Clip(1, day, day.Add(10*time.Second)); !errors.Is(err, recordings.ErrNoRecording) {
		t.Fatalf("old range still there: %v", err)
	}
	b, err := io.ReadAll(f)
	if err != nil || int64(len(b)) != f.Size() {
		t.Fatalf("read %d of %d: %v", len(b), f.Size(), err)
	}
	checkMP4(t, b, f.End.Sub(f.Start))
}

// BenchmarkExport reads a 10-minute export of 2 Mbps recording, as
// http.ServeContent does, from volumes no longer written (opened with
// readahead, evicted from the page cache when opened).
func BenchmarkExport(b *testing.B) {
	s := storeOf(b, recordings.Options{NoSync: true, VolumeSize: 64 << 20, Quota: recordings.Quota{Bytes: 1 << 40}},
		&fmp4test.Source{Start: day, FrameBytes: 7000, Audio: true}, 10*time.Minute) // about 2 Mbps
	buf := make([]byte, 32<<10)
	b.ResetTimer()
	var size int64
	for range b.N {
		c, err := s.Clip(1, day, day.Add(10*time.Minute))
		if err != nil {
			b.Fatal(err)
		}
		f, err := New(c)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, buf)
		f.Close()
		if err != nil || n != f.Size() {
			b.Fatalf("read %d of %d: %v", n, f.Size(), err)
		}
		size = n
	}
	b.SetBytes(size)
}
