package fmp4

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformed means bytes that should hold a fragment (moof + mdat) do not.
var ErrMalformed = errors.New("fmp4: malformed fragment")

// BaseTimes returns the base media decode time (tfdt) of every track in a
// fragment, by track ID.
func BaseTimes(frag []byte) (map[uint32]uint64, error) {
	out := make(map[uint32]uint64, 2)
	err := walkMoof(frag, func(_ []byte) {}, func(track uint32, tfdt []byte) error {
		if len(tfdt) == 8 {
			out[track] = binary.BigEndian.Uint64(tfdt)
		} else {
			out[track] = uint64(binary.BigEndian.Uint32(tfdt))
		}
		return nil
	})
	return out, err
}

// Retime rewrites a fragment in place: its sequence number becomes seq and
// every track's base media decode time goes down by shift(track ID). The
// size never changes, so an export's length is known before it is read.
func Retime(frag []byte, seq uint32, shift func(track uint32) uint64) error {
	return walkMoof(frag,
		func(mfhdSeq []byte) { binary.BigEndian.PutUint32(mfhdSeq, seq) },
		func(track uint32, tfdt []byte) error {
			s := shift(track)
			if len(tfdt) == 8 {
				v := binary.BigEndian.Uint64(tfdt)
				if v < s {
					return fmt.Errorf("%w: track %d time %d before the shift %d", ErrMalformed, track, v, s)
				}
				binary.BigEndian.PutUint64(tfdt, v-s)
				return nil
			}
			v := uint64(binary.BigEndian.Uint32(tfdt))
			if v < s {
				return fmt.Errorf("%w: track %d time %d before the shift %d", ErrMalformed, track, v, s)
			}
			binary.BigEndian.PutUint32(tfdt, uint32(v-s))
			return nil
		})
}

// walkMoof finds, in the moof boxes of b, the mfhd sequence number field and
// each traf's track ID and tfdt field. Only box headers are read; the boxes
// themselves are what mediacommon wrote.
func walkMoof(b []byte, seq func([]byte), tfdt func(track uint32, field []byte) error) error {
	found := false
	for len(b) > 0 {
		typ, body, rest, err := box(b)
		if err != nil {
			return err
		}
		b = rest
		if typ != "moof" {
			continue
		}
		found = true
		for len(body) > 0 {
			t, inner, r, err := box(body)
			if err != nil {
				return err
			}
			body = r
			switch t {
			case "mfhd":
				if len(inner) < 8 {
					return fmt.Errorf("%w: short mfhd", ErrMalformed)
				}
				seq(inner[4:8])
			case "traf":
				if err := walkTraf(inner, tfdt); err != nil {
					return err
				}
			}
		}
	}
	if !found {
		return fmt.Errorf("%w: no moof box", ErrMalformed)
	}
	return nil
}

func walkTraf(b []byte, fn func(uint32, []byte) error) error {
	var (
		track    uint32
		hasTrack bool
		field    []byte
	)
	for len(b) > 0 {
		t, inner, rest, err := box(b)
		if err != nil {
			return err
		}
		b = rest
		switch t {
		case "tfhd":
			if len(inner) < 8 {
				return fmt.Errorf("%w: short tfhd", ErrMalformed)
			}
			track, hasTrack = binary.BigEndian.Uint32(inner[4:8]), true
		case "tfdt":
			switch {
			case len(inner) >= 12 && inner[0] == 1:
				field = inner[4:12]
			case len(inner) >= 8 && inner[0] == 0:
				field = inner[4:8]
			default:
				return fmt.Errorf("%w: bad tfdt", ErrMalformed)
			}
		}
	}
	if !hasTrack || field == nil {
		return fmt.Errorf("%w: traf without tfhd or tfdt", ErrMalformed)
	}
	return fn(track, field)
}

// box splits off the first box of b: its type, its body and what follows.
func box(b []byte) (typ string, body, rest []byte, err error) {
	if len(b) < 8 {
		return "", nil, nil, fmt.Errorf("%w: truncated box header", ErrMalformed)
	}
	size := uint64(binary.BigEndian.Uint32(b))
	hdr := uint64(8)
	switch size {
	case 1:
		if len(b) < 16 {
			return "", nil, nil, fmt.Errorf("%w: truncated box header", ErrMalformed)
		}
		size, hdr = binary.BigEndian.Uint64(b[8:]), 16
	case 0:
		size = uint64(len(b))
	}
	if size < hdr || size > uint64(len(b)) {
		return "", nil, nil, fmt.Errorf("%w: box size %d out of bounds", ErrMalformed, size)
	}
	return string(b[4:8]), b[hdr:size], b[size:], nil
}
