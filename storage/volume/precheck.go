package volume

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// bbolt's on-disk format (version 2), as far as precheck reads it. bbolt
// writes its structures in the machine's byte order.
const (
	bboltMagic       = 0xED0CDAED
	bboltVersion     = 2
	pageHeaderSize   = 16
	elementSize      = 16 // branch and leaf elements alike
	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	freelistPageFlag = 0x10
	bucketLeafFlag   = 0x01
	noFreelist       = ^uint64(0)
	bucketHeaderSize = 16
)

var ne = binary.NativeEndian

// precheck walks a bbolt file's page tree with ordinary reads, before the
// file is memory-mapped: bbolt trusts the page numbers it finds, and a
// damaged file that points past its end would fault the mapping and kill
// the process. It checks the meta pages, that every page the tree reaches
// lies below the high-water mark and inside the file, that each is
// reached once, and that element bounds stay inside their pages. What it
// lets through is safe for bbolt's own Check to examine. keep leaves what
// it read in the page cache.
func precheck(path string, keep bool) error {
	f, err := os.Open(path)
	if err != nil {
		return &ioError{err}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return &ioError{err}
	}
	c := &checker{f: f, size: fi.Size()}
	err = c.run()
	if !keep {
		dropCache(f) // what the walk read in, readahead and all (see randomAccess)
	}
	return err
}

// ioError is a failure to read, as opposed to what was read being wrong:
// a failing card must not get its volumes quarantined.
type ioError struct{ err error }

func (e *ioError) Error() string { return e.err.Error() }
func (e *ioError) Unwrap() error { return e.err }

// readAt reads like ReadAt; running into the end of the file is damage
// (the file is short), anything else an ioError.
func (c *checker) readAt(b []byte, off int64) error {
	_, err := c.f.ReadAt(b, off)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF):
		return fmt.Errorf("read past the end of the file at %d", off)
	}
	return &ioError{err}
}

type checker struct {
	f        *os.File
	size     int64
	pageSize int64
	hwm      uint64
	seen     []uint64 // bitmap of pages reached
	buf      []byte
}

type meta struct {
	pageSize       uint32
	root, freelist uint64
	pgid, txid     uint64
}

func readMeta(b []byte) (meta, error) {
	if len(b) < pageHeaderSize+64 {
		return meta{}, errors.New("short meta page")
	}
	m := b[pageHeaderSize:]
	if ne.Uint32(m[0:]) != bboltMagic {
		return meta{}, errors.New("not a bbolt file (magic)")
	}
	if ne.Uint32(m[4:]) != bboltVersion {
		return meta{}, errors.New("unknown bbolt version")
	}
	h := fnv.New64a()
	h.Write(m[:56])
	if h.Sum64() != ne.Uint64(m[56:]) {
		return meta{}, errors.New("meta checksum")
	}
	return meta{
		pageSize: ne.Uint32(m[8:]),
		root:     ne.Uint64(m[16:]),
		freelist: ne.Uint64(m[32:]),
		pgid:     ne.Uint64(m[40:]),
		txid:     ne.Uint64(m[48:]),
	}, nil
}

func (c *checker) run() error {
	if c.size < 2*1024 {
		return errors.New("file too small")
	}
	first := make([]byte, 4096)
	if _, err := c.f.ReadAt(first, 0); err != nil && !errors.Is(err, io.EOF) {
		return &ioError{err}
	}
	m0, err0 := readMeta(first)
	ps := int64(4096)
	if err0 == nil {
		ps = int64(m0.pageSize)
	}
	if ps < 512 || ps > 1<<16 || ps&(ps-1) != 0 {
		return fmt.Errorf("page size %d", ps)
	}
	second := make([]byte, ps)
	var m1 meta
	var err1 error
	if err := c.readAt(second, ps); err != nil {
		var ie *ioError
		if errors.As(err, &ie) {
			return err
		}
		err1 = err
	} else {
		m1, err1 = readMeta(second)
	}
	var m meta
	switch {
	case err0 == nil && (err1 != nil || m0.txid >= m1.txid):
		m = m0
	case err1 == nil:
		m = m1
	default:
		return fmt.Errorf("no valid meta page: %w; %w", err0, err1)
	}
	if int64(m.pageSize) != ps {
		return fmt.Errorf("page size %d disagrees with %d", m.pageSize, ps)
	}
	c.pageSize = ps
	c.hwm = m.pgid
	if c.hwm < 3 || int64(c.hwm) > c.size/ps {
		return fmt.Errorf("high-water mark %d pages, file holds %d: truncated", c.hwm, c.size/ps)
	}
	c.seen = make([]uint64, (c.hwm+63)/64)
	c.mark(0, 0)
	c.mark(1, 0)
	if m.freelist != noFreelist {
		if err := c.freelist(m.freelist); err != nil {
			return err
		}
	}
	return c.bucket(m.root, nil, 0)
}

// mark records that page id (and its overflow pages) was reached.
func (c *checker) mark(id uint64, overflow uint32) error {
	if id+uint64(overflow) >= c.hwm || id+uint64(overflow) < id {
		return fmt.Errorf("page %d+%d beyond the high-water mark %d", id, overflow, c.hwm)
	}
	for p := id; p <= id+uint64(overflow); p++ {
		if c.seen[p/64]&(1<<(p%64)) != 0 {
			return fmt.Errorf("page %d reached twice", p)
		}
		c.seen[p/64] |= 1 << (p % 64)
	}
	return nil
}

// page reads the header of page id and up to limit bytes of it.
func (c *checker) page(id uint64, limit int64) (flags uint16, count uint16, overflow uint32, b []byte, err error) {
	if id < 2 || id >= c.hwm {
		return 0, 0, 0, nil, fmt.Errorf("page %d out of bounds (high-water mark %d)", id, c.hwm)
	}
	hdr := make([]byte, pageHeaderSize)
	if err := c.readAt(hdr, int64(id)*c.pageSize); err != nil {
		return 0, 0, 0, nil, err
	}
	if ne.Uint64(hdr) != id {
		return 0, 0, 0, nil, fmt.Errorf("page %d says it is page %d", id, ne.Uint64(hdr))
	}
	flags, count, overflow = ne.Uint16(hdr[8:]), ne.Uint16(hdr[10:]), ne.Uint32(hdr[12:])
	if err := c.mark(id, overflow); err != nil {
		return 0, 0, 0, nil, err
	}
	b, err = c.read(id, min(int64(overflow+1)*c.pageSize, limit))
	return flags, count, overflow, b, err
}

func (c *checker) freelist(id uint64) error {
	flags, count, _, b, err := c.page(id, 1<<20)
	if err != nil {
		return fmt.Errorf("freelist: %w", err)
	}
	if flags != freelistPageFlag {
		return fmt.Errorf("freelist page %d has flags %#x", id, flags)
	}
	n, off := int64(count), int64(pageHeaderSize)
	if count == 0xFFFF {
		if len(b) < pageHeaderSize+8 {
			return errors.New("freelist: short")
		}
		n, off = int64(ne.Uint64(b[pageHeaderSize:])), pageHeaderSize+8
	}
	if n < 0 || n > int64(c.hwm) || off+8*n > int64(len(b)) {
		return fmt.Errorf("freelist: %d entries do not fit", n)
	}
	for i := range n {
		if p := ne.Uint64(b[off+8*i:]); p < 2 || p >= c.hwm {
			return fmt.Errorf("freelist: page %d out of bounds", p)
		}
	}
	return nil
}

// maxElementBytes bounds how much of a page run the checker reads: the
// element headers and keys of camd's pages fit easily; the values of big
// leaves (fragment data) are only bounds-checked, never read.
const maxElementBytes = 1 << 20

// bucket checks the bucket whose root is page root, or the inline bucket
// held in inline when root is 0.
func (c *checker) bucket(root uint64, inline []byte, depth int) error {
	if depth > 8 {
		return errors.New("buckets nested too deep")
	}
	if root == 0 {
		return c.elements(inline, leafPageFlag, depth, true)
	}
	return c.tree(root, depth, 0)
}

func (c *checker) tree(id uint64, depth, level int) error {
	if level > 32 {
		return errors.New("tree too deep")
	}
	flags, count, overflow, b, err := c.page(id, c.pageSize)
	if err != nil {
		return err
	}
	if flags != branchPageFlag && flags != leafPageFlag {
		return fmt.Errorf("page %d has flags %#x, want branch or leaf", id, flags)
	}
	run := int64(overflow+1) * c.pageSize
	need := int64(pageHeaderSize) + int64(count)*elementSize
	if need > run || need > maxElementBytes {
		return fmt.Errorf("page %d: %d elements do not fit", id, count)
	}
	if need > int64(len(b)) {
		if b, err = c.read(id, need); err != nil {
			return err
		}
	}
	if flags == leafPageFlag {
		// Only nested buckets' values are read; big values stay on disk.
		for i := range int64(count) {
			e := b[pageHeaderSize+i*elementSize:]
			if ne.Uint32(e)&bucketLeafFlag == 0 {
				continue
			}
			end := pageHeaderSize + i*elementSize + int64(ne.Uint32(e[4:])) + int64(ne.Uint32(e[8:])) + int64(ne.Uint32(e[12:]))
			if end > run || end > maxElementBytes {
				return fmt.Errorf("page %d: bucket element %d out of its page", id, i)
			}
			need = max(need, end)
		}
		if need > int64(len(b)) {
			if b, err = c.read(id, need); err != nil {
				return err
			}
		}
	}
	// Copy what the recursion needs: c.buf is reused.
	b = append([]byte(nil), b...)
	return c.walkElements(b, flags, count, run, depth, level, false)
}

// read reads the first n bytes of page id's run.
func (c *checker) read(id uint64, n int64) ([]byte, error) {
	if cap(c.buf) < int(n) {
		c.buf = make([]byte, n)
	}
	b := c.buf[:n]
	if err := c.readAt(b, int64(id)*c.pageSize); err != nil {
		return nil, err
	}
	return b, nil
}

// elements checks an inline bucket's page.
func (c *checker) elements(b []byte, want uint16, depth int, inline bool) error {
	if len(b) < bucketHeaderSize+pageHeaderSize {
		return errors.New("inline bucket too short")
	}
	p := b[bucketHeaderSize:]
	flags, count := ne.Uint16(p[8:]), ne.Uint16(p[10:])
	if flags != want {
		return fmt.Errorf("inline bucket page has flags %#x", flags)
	}
	if int64(pageHeaderSize)+int64(count)*elementSize > int64(len(p)) {
		return errors.New("inline bucket elements do not fit")
	}
	return c.walkElements(p, flags, count, int64(len(p)), depth, 0, inline)
}

func (c *checker) walkElements(b []byte, flags, count uint16, run int64, depth, level int, inline bool) error {
	for i := range int64(count) {
		at := int64(pageHeaderSize) + i*elementSize
		e := b[at : at+elementSize]
		if flags == branchPageFlag {
			pos, ksize, child := int64(ne.Uint32(e[0:])), int64(ne.Uint32(e[4:])), ne.Uint64(e[8:])
			if at+pos+ksize > run {
				return fmt.Errorf("branch element %d out of its page", i)
			}
			if err := c.tree(child, depth, level+1); err != nil {
				return err
			}
			continue
		}
		eflags, pos, ksize, vsize := ne.Uint32(e[0:]), int64(ne.Uint32(e[4:])), int64(ne.Uint32(e[8:])), int64(ne.Uint32(e[12:]))
		end := at + pos + ksize + vsize
		if end > run {
			return fmt.Errorf("leaf element %d out of its page", i)
		}
		if eflags&bucketLeafFlag == 0 {
			continue
		}
		if inline {
			return errors.New("bucket inside an inline bucket")
		}
		if end > int64(len(b)) {
			return fmt.Errorf("bucket element %d beyond what was read", i)
		}
		v := b[at+pos+ksize : end]
		if len(v) < bucketHeaderSize {
			return fmt.Errorf("bucket element %d too short", i)
		}
		if err := c.bucket(ne.Uint64(v), v, depth+1); err != nil {
			return err
		}
	}
	return nil
}
