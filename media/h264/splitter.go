package h264

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Limits that keep a Splitter's memory bounded whatever it reads.
const (
	// SyncLimit is how many bytes may come before the first start code.
	// Encoders start their output with one; more junk means the input is
	// not an Annex-B stream.
	SyncLimit = 64 << 10
	// MaxNALUSize bounds one NAL unit. A 50 Mbps 2160p stream stays well
	// below it; only garbage without start codes reaches it.
	MaxNALUSize = 8 << 20
	// MaxAccessUnitSize bounds one access unit.
	MaxAccessUnitSize = 16 << 20
)

var (
	// ErrNotH264 means the input is not an H.264 Annex-B stream: no start
	// code in the first SyncLimit bytes, invalid NAL unit headers before
	// the first SPS, or an input that ended without any SPS.
	ErrNotH264 = errors.New("h264: not an Annex-B H.264 stream")
	// ErrNALUTooLarge means a NAL unit grew beyond MaxNALUSize.
	ErrNALUTooLarge = errors.New("h264: NAL unit too large")
	// ErrAccessUnitTooLarge means an access unit grew beyond
	// MaxAccessUnitSize.
	ErrAccessUnitTooLarge = errors.New("h264: access unit too large")
)

// Each Read is offered at least minReadSize bytes, and readSize once the
// buffer has grown.
const (
	minReadSize = 4 << 10
	readSize    = 32 << 10
)

// placeBytes is a prefix of a NAL unit long enough to hold the header byte
// and first_mb_in_slice, even with emulation prevention bytes: a slice
// whose first_mb_in_slice cannot be read from it is malformed.
const placeBytes = 1 + 16

// AccessUnit is one coded picture with the NAL units that precede it.
type AccessUnit struct {
	// Data holds the NAL units in Annex-B form, each behind the start code
	// it had in the input (3 or 4 bytes), without trailing zero bytes.
	// It is a new slice owned by the caller.
	Data []byte
	// Key is true when the access unit holds an IDR slice (NAL type 5).
	Key bool
	// HasSPS and HasPPS tell whether a sequence and a picture parameter
	// set are carried inline.
	HasSPS, HasPPS bool
}

// SplitterStats counts what a Splitter read and returned.
type SplitterStats struct {
	// Bytes were read from the input.
	Bytes int64
	// AccessUnits were returned by Next.
	AccessUnits int64
	// Skipped bytes came before the first start code.
	Skipped int64
	// DroppedTail is the size of the access unit that was in progress when
	// the input ended, which Next dropped because it cannot be known to be
	// complete; 0 when nothing was dropped.
	DroppedTail int
}

// Splitter cuts an Annex-B byte stream into access units. It reads its
// input incrementally, in chunks of any size, and is not safe for
// concurrent use.
//
// Annex-B marks no end of an access unit: one is complete when the first
// bytes of the next have arrived (a delimiter, parameter set or SEI header,
// or a slice header with first_mb_in_slice 0). A live source therefore
// returns each access unit as soon as its encoder starts writing the next.
type Splitter struct {
	r     io.Reader
	eof   bool  // r returned io.EOF
	final error // returned by every Next once set

	buf []byte
	// off is where unread data starts: the payload of the current NAL
	// unit once synced, else the place to search for a start code.
	off int
	// scan is where the search for the next start code resumes.
	scan int

	synced bool
	// The current NAL unit's payload starts at off; its start code was
	// scLen bytes long. placed is set once it is known which access unit
	// it belongs to.
	scLen  int
	placed bool

	// The access unit being built: its bytes, whether it holds a slice,
	// ends with an end of sequence or stream, holds an IDR slice, an SPS,
	// a PPS.
	au                  []byte
	auVCL, auEnd        bool
	auKey, auSPS, auPPS bool

	// Until the first SPS, NAL unit headers are checked: invalid ones
	// must not outnumber valid ones.
	sawSPS                 bool
	validHdrs, invalidHdrs int

	stats SplitterStats
}

// NewSplitter returns a Splitter reading r.
func NewSplitter(r io.Reader) *Splitter {
	return &Splitter{r: r}
}

// Stats returns the splitter's counters.
func (s *Splitter) Stats() SplitterStats { return s.stats }

// Next returns the next access unit. At the end of the input it returns
// io.EOF and drops the access unit in progress (see
// SplitterStats.DroppedTail), unless its last NAL unit is an end of
// sequence or end of stream, which proves it complete. Other errors are
// ErrNotH264, ErrNALUTooLarge, ErrAccessUnitTooLarge or the reader's error.
// After an error every call returns the same error.
func (s *Splitter) Next() (AccessUnit, error) {
	if s.final != nil {
		return AccessUnit{}, s.final
	}
	au, err := s.next()
	if err != nil {
		s.final = err
		s.buf, s.au = nil, nil
		return AccessUnit{}, err
	}
	s.stats.AccessUnits++
	return au, nil
}

func (s *Splitter) next() (AccessUnit, error) {
	for {
		if !s.synced {
			if err := s.sync(); err != nil {
				return AccessUnit{}, err
			}
			continue
		}
		nalStart := s.off
		if i := bytes.Index(s.buf[s.scan:], startCode); i >= 0 {
			// The current NAL unit ends before the next start code and its
			// zero bytes.
			next := s.scan + i
			end := next
			for end > nalStart && s.buf[end-1] == 0 {
				end--
			}
			nalu := s.buf[nalStart:end]
			if len(nalu) > 0 {
				if !s.placed {
					if au, emit, err := s.place(nalu, true); err != nil || emit {
						return au, err
					}
				}
				if err := s.appendNALU(nalu); err != nil {
					return AccessUnit{}, err
				}
			}
			s.startNALU(next, next > end)
			continue
		}
		s.scan = max(nalStart, len(s.buf)-2)
		// A leading zero byte may yet turn out to be part of the next
		// start code: place such a NAL unit once it is complete.
		if !s.placed && len(s.buf) > nalStart && s.buf[nalStart] != 0 {
			if au, emit, err := s.place(s.buf[nalStart:], false); err != nil || emit {
				return au, err
			}
		}
		if len(s.buf)-nalStart > MaxNALUSize {
			return AccessUnit{}, s.notH264IfUnsynced(ErrNALUTooLarge)
		}
		if err := s.fill(); err != nil {
			if err == io.EOF {
				return s.finish()
			}
			return AccessUnit{}, err
		}
	}
}

// sync looks for the first start code.
func (s *Splitter) sync() error {
	if i := bytes.Index(s.buf[s.scan:], startCode); i >= 0 {
		at := s.scan + i
		zeroByte := at > s.off && s.buf[at-1] == 0
		s.stats.Skipped += int64(at - s.off)
		if zeroByte {
			s.stats.Skipped--
		}
		if s.stats.Skipped >= SyncLimit {
			return fmt.Errorf("%w: no start code in the first %d bytes", ErrNotH264, SyncLimit)
		}
		s.synced = true
		s.startNALU(at, zeroByte)
		return nil
	}
	// Keep the last three bytes: a start code may begin in them, and a
	// zero byte in front of it makes it a 4-byte one.
	keep := max(s.off, len(s.buf)-3)
	s.stats.Skipped += int64(keep - s.off)
	s.off, s.scan = keep, keep
	if s.stats.Skipped >= SyncLimit {
		return fmt.Errorf("%w: no start code in the first %d bytes", ErrNotH264, SyncLimit)
	}
	if err := s.fill(); err != nil {
		if err == io.EOF && s.stats.Bytes > 0 {
			return fmt.Errorf("%w: no start code", ErrNotH264)
		}
		return err
	}
	return nil
}

// startNALU begins a NAL unit whose start code is at i.
func (s *Splitter) startNALU(i int, zeroByte bool) {
	s.off = i + 3
	s.scan = s.off
	s.scLen = 3
	if zeroByte {
		s.scLen = 4
	}
	s.placed = false
}

// place decides whether the NAL unit that begins with prefix starts a new
// access unit; if so, and the current one holds a picture, it returns the
// current one. complete tells that prefix is the whole NAL unit. A prefix
// too short to hold first_mb_in_slice leaves the NAL unit unplaced.
func (s *Splitter) place(prefix []byte, complete bool) (au AccessUnit, emit bool, err error) {
	hdr := prefix[0]
	typ := hdr & 0x1f
	starts := false
	if s.auVCL {
		starts = s.auEnd
		switch typ {
		case naluNonIDR, naluPartA, naluIDR:
			mb, ok := firstMBInSlice(prefix)
			if !ok && !complete && len(prefix) < placeBytes {
				return AccessUnit{}, false, nil
			}
			// A slice header that cannot be read continues the picture.
			starts = starts || (ok && mb == 0)
		case naluSEI, naluSPS, naluPPS, naluAUD, 14, 15, 16, 17, 18:
			starts = true
		}
	}
	s.placed = true
	if !s.sawSPS {
		if validHeader(hdr) {
			s.validHdrs++
		} else {
			s.invalidHdrs++
		}
		if s.invalidHdrs > s.validHdrs {
			return AccessUnit{}, false, fmt.Errorf("%w: invalid NAL unit header 0x%02x before any SPS", ErrNotH264, hdr)
		}
		if typ == naluSPS {
			s.sawSPS = true
		}
	}
	if !starts {
		return AccessUnit{}, false, nil
	}
	return s.emit(), true, nil
}

// appendNALU adds a complete NAL unit to the access unit being built.
func (s *Splitter) appendNALU(nalu []byte) error {
	if len(s.au)+s.scLen+len(nalu) > MaxAccessUnitSize {
		return s.notH264IfUnsynced(ErrAccessUnitTooLarge)
	}
	if s.scLen == 4 {
		s.au = append(s.au, 0)
	}
	s.au = append(s.au, 0, 0, 1)
	s.au = append(s.au, nalu...)
	switch naluType(nalu) {
	case naluNonIDR, naluPartA, 3, 4:
		s.auVCL = true
	case naluIDR:
		s.auVCL, s.auKey = true, true
	case naluSPS:
		s.auSPS = true
	case naluPPS:
		s.auPPS = true
	case naluEndOfSeq, naluEndOfStrm:
		s.auEnd = true
	}
	return nil
}

// emit returns the access unit built so far and starts a new one.
func (s *Splitter) emit() AccessUnit {
	au := AccessUnit{Data: bytes.Clone(s.au), Key: s.auKey, HasSPS: s.auSPS, HasPPS: s.auPPS}
	s.au = s.au[:0]
	s.auVCL, s.auEnd, s.auKey, s.auSPS, s.auPPS = false, false, false, false, false
	return au
}

// finish handles the end of the input. The current NAL unit, s.buf[s.off:],
// has no start code behind it, so it may have been cut short.
func (s *Splitter) finish() (AccessUnit, error) {
	nalu := bytes.TrimRight(s.buf[s.off:], "\x00")
	if len(nalu) > 0 && !s.placed {
		// Its header may still prove that the access unit before it is
		// complete.
		if au, emit, err := s.place(nalu, false); err != nil || emit {
			return au, err
		}
	}
	if len(nalu) == 1 && (naluType(nalu) == naluEndOfSeq || naluType(nalu) == naluEndOfStrm) {
		// A one-byte NAL unit cannot have been cut short.
		if err := s.appendNALU(nalu); err != nil {
			return AccessUnit{}, err
		}
		s.off = len(s.buf)
		nalu = nil
		if s.auVCL {
			return s.emit(), nil
		}
	}
	if len(nalu) > 0 {
		s.stats.DroppedTail = len(s.au) + s.scLen + len(nalu)
	} else {
		s.stats.DroppedTail = len(s.au)
	}
	if !s.sawSPS && s.stats.AccessUnits == 0 {
		return AccessUnit{}, fmt.Errorf("%w: input ended without any SPS", ErrNotH264)
	}
	return AccessUnit{}, io.EOF
}

// notH264IfUnsynced marks err as ErrNotH264 too when no SPS was seen yet:
// a real stream starts with its parameter sets long before a NAL or access
// unit reaches the size limits.
func (s *Splitter) notH264IfUnsynced(err error) error {
	if !s.sawSPS {
		return fmt.Errorf("%w: %w", ErrNotH264, err)
	}
	return err
}

// fill reads more input into buf. When it needs room it moves the unread
// data to the front if that frees at least as many bytes as it moves, else
// it grows buf: either way each byte is moved a bounded number of times on
// average, even when the reader delivers one byte at a time.
func (s *Splitter) fill() error {
	if s.eof {
		return io.EOF
	}
	// Small streams get a small buffer; busy ones read readSize at a time.
	want := min(readSize, max(minReadSize, cap(s.buf)/2))
	if cap(s.buf)-len(s.buf) < want {
		live := len(s.buf) - s.off
		nb := s.buf[:0]
		if s.off < live || cap(s.buf)-live < want {
			nb = make([]byte, 0, max(2*live+want, 2*want))
		}
		s.buf = append(nb, s.buf[s.off:]...)
		s.scan -= s.off
		s.off = 0
	}
	for range 100 {
		n, err := s.r.Read(s.buf[len(s.buf):cap(s.buf)])
		s.buf = s.buf[:len(s.buf)+n]
		s.stats.Bytes += int64(n)
		if err == io.EOF {
			s.eof = true
			if n > 0 {
				return nil
			}
			return io.EOF
		}
		if err != nil {
			return fmt.Errorf("h264: read: %w", err)
		}
		if n > 0 {
			return nil
		}
	}
	return fmt.Errorf("h264: read: %w", io.ErrNoProgress)
}
