package volume

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"
)

// metaPageFlag is bbolt's flag of its two meta pages, which precheck
// finds by position rather than by flag.
const metaPageFlag = 0x04

// TestBBoltFormatIsWhatPrecheckReads pins the parts of bbolt's on-disk
// format that precheck reads with plain reads, and so cannot learn from
// bbolt: a file written by the bbolt module this build links is decoded
// with precheck's constants and compared with what bbolt's API says of
// the same file. If a new bbolt changes its format (magic, version,
// page header, element layout, bucket header, freelist), this test fails
// before precheck starts refusing good volumes or passing bad ones.
func TestBBoltFormatIsWhatPrecheckReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "format.db")
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{FreelistType: bbolt.FreelistMapType})
	if err != nil {
		t.Fatal(err)
	}
	// A bucket big enough for branch pages, values big enough for
	// overflow pages, a nested bucket with pages of its own and an inline
	// one (a fragment's bucket in a volume) with a sequence number, and
	// deletions that leave free pages.
	key := func(i int) []byte { return fmt.Appendf(nil, "key-%05d", i) }
	value := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 10+i%50) }
	err = db.Update(func(tx *bbolt.Tx) error {
		big, err := tx.CreateBucket([]byte("big"))
		if err != nil {
			return err
		}
		for i := range 2000 {
			if err := big.Put(key(i), value(i)); err != nil {
				return err
			}
		}
		if err := big.Put([]byte("large"), bytes.Repeat([]byte("L"), 3*os.Getpagesize())); err != nil {
			return err
		}
		nested, err := big.CreateBucket([]byte("nested"))
		if err != nil {
			return err
		}
		for i := range 500 {
			if err := nested.Put(key(i), value(i)); err != nil {
				return err
			}
		}
		inline, err := tx.CreateBucket([]byte("inline"))
		if err != nil {
			return err
		}
		if err := inline.SetSequence(0x0123456789abcdef); err != nil {
			return err
		}
		return inline.Put([]byte("m"), []byte("data"))
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		big := tx.Bucket([]byte("big"))
		for i := 0; i < 2000; i += 3 {
			if err := big.Delete(key(i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	type pageInfo struct {
		typ             string
		count, overflow int
	}
	pages := map[uint64]pageInfo{}
	var hwm, txid, root, bigRoot, nestedRoot uint64
	var ps int
	var bigKeys, bigValues [][]byte
	err = db.View(func(tx *bbolt.Tx) error {
		ps = db.Info().PageSize
		hwm, txid = uint64(tx.Size())/uint64(ps), uint64(tx.ID())
		root = uint64(tx.Cursor().Bucket().Root())
		big := tx.Bucket([]byte("big"))
		bigRoot = uint64(big.Root())
		nestedRoot = uint64(big.Bucket([]byte("nested")).Root())
		big.ForEach(func(k, v []byte) error {
			if v != nil { // buckets have no value
				bigKeys, bigValues = append(bigKeys, bytes.Clone(k)), append(bigValues, bytes.Clone(v))
			}
			return nil
		})
		for id := 0; uint64(id) < hwm; {
			p, err := tx.Page(id)
			if err != nil {
				return err
			}
			pages[uint64(id)] = pageInfo{p.Type, p.Count, p.OverflowCount}
			id += 1 + p.OverflowCount
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bigRoot == 0 || nestedRoot == 0 {
		t.Fatal("the test's buckets are inline: no pages of their own to check")
	}

	// The meta pages: magic, version, page size, root, freelist,
	// high-water mark, transaction ID and checksum where precheck reads
	// them.
	m0, err0 := readMeta(b)
	m1, err1 := readMeta(b[ps:])
	if err0 != nil || err1 != nil {
		t.Fatalf("meta pages: %v; %v (magic %#x, version %d)", err0, err1, uint32(bboltMagic), bboltVersion)
	}
	m := m0
	if m1.txid > m0.txid {
		m = m1
	}
	var freelist uint64
	for id, p := range pages {
		if p.typ == "freelist" {
			freelist = id
		}
	}
	if int(m.pageSize) != ps || m.txid != txid || m.pgid != hwm || m.root != root || m.freelist != freelist {
		t.Fatalf("meta says page size %d, txid %d, high-water mark %d, root %d, freelist %d; bbolt says %d, %d, %d, %d, %d",
			m.pageSize, m.txid, m.pgid, m.root, m.freelist, ps, txid, hwm, root, freelist)
	}

	// Every page's header: ID, flags, element count, overflow.
	flags := map[string]uint16{"meta": metaPageFlag, "branch": branchPageFlag, "leaf": leafPageFlag, "freelist": freelistPageFlag}
	seenTypes := map[string]bool{}
	for id, p := range pages {
		if p.typ == "free" {
			continue
		}
		hdr := b[id*uint64(ps):]
		if got := ne.Uint64(hdr); got != id {
			t.Errorf("page %d: header says page %d", id, got)
		}
		if got, want := ne.Uint16(hdr[8:]), flags[p.typ]; got != want {
			t.Errorf("page %d (%s): flags %#x, want %#x", id, p.typ, got, want)
		}
		if got := int(ne.Uint16(hdr[10:])); got != p.count {
			t.Errorf("page %d (%s): count %d, bbolt says %d", id, p.typ, got, p.count)
		}
		if got := int(ne.Uint32(hdr[12:])); got != p.overflow {
			t.Errorf("page %d (%s): overflow %d, bbolt says %d", id, p.typ, got, p.overflow)
		}
		seenTypes[p.typ] = true
		if p.overflow > 0 {
			seenTypes["overflow"] = true
		}
	}
	for _, typ := range []string{"meta", "branch", "leaf", "freelist", "overflow"} {
		if !seenTypes[typ] {
			t.Errorf("the file has no %s page: the test checks less than it should", typ)
		}
	}

	// The freelist: page IDs after the header, all of free pages.
	fl := b[freelist*uint64(ps):]
	n := int(ne.Uint16(fl[10:]))
	if n == 0 {
		t.Error("the freelist is empty: the test checks less than it should")
	}
	for i := range n {
		if id := ne.Uint64(fl[pageHeaderSize+8*i:]); pages[id].typ != "free" {
			t.Errorf("freelist entry %d is page %d, a %q page", i, id, pages[id].typ)
		}
	}

	// Branch and leaf elements: walking the big bucket's tree with
	// precheck's element layout finds bbolt's keys and values, in order.
	var keys, values [][]byte
	var walk func(id uint64)
	walk = func(id uint64) {
		page := b[id*uint64(ps):]
		for i := range int(ne.Uint16(page[10:])) {
			at := pageHeaderSize + i*elementSize
			e := page[at:]
			if ne.Uint16(page[8:]) == branchPageFlag {
				pos, ksize, child := int(ne.Uint32(e)), int(ne.Uint32(e[4:])), ne.Uint64(e[8:])
				first := len(keys)
				walk(child)
				if first < len(keys) && !bytes.Equal(page[at+pos:at+pos+ksize], keys[first]) {
					t.Errorf("branch %d element %d: key %q, its child starts with %q", id, i, page[at+pos:at+pos+ksize], keys[first])
				}
				continue
			}
			eflags, pos, ksize, vsize := ne.Uint32(e), int(ne.Uint32(e[4:])), int(ne.Uint32(e[8:])), int(ne.Uint32(e[12:]))
			if eflags&bucketLeafFlag != 0 {
				v := page[at+pos+ksize : at+pos+ksize+vsize]
				if len(v) < bucketHeaderSize || ne.Uint64(v) != nestedRoot {
					t.Errorf("nested bucket element: header %x, want root %d", v[:min(len(v), bucketHeaderSize)], nestedRoot)
				}
				continue
			}
			keys = append(keys, page[at+pos:at+pos+ksize])
			values = append(values, page[at+pos+ksize:at+pos+ksize+vsize])
		}
	}
	walk(bigRoot)
	if len(keys) != len(bigKeys) {
		t.Fatalf("the walk found %d keys, bbolt %d", len(keys), len(bigKeys))
	}
	for i := range keys {
		if !bytes.Equal(keys[i], bigKeys[i]) || !bytes.Equal(values[i], bigValues[i]) {
			t.Fatalf("element %d: %q = %d bytes, bbolt says %q = %d bytes", i, keys[i], len(values[i]), bigKeys[i], len(bigValues[i]))
		}
	}

	// The inline bucket: a bucket header (root 0, then the sequence
	// number, where volumes keep a fragment's size and duration) and its
	// page, in its parent's leaf element.
	rootPage := b[root*uint64(ps):]
	found := false
	for i := range int(ne.Uint16(rootPage[10:])) {
		at := pageHeaderSize + i*elementSize
		e := rootPage[at:]
		pos, ksize, vsize := int(ne.Uint32(e[4:])), int(ne.Uint32(e[8:])), int(ne.Uint32(e[12:]))
		if string(rootPage[at+pos:at+pos+ksize]) != "inline" {
			continue
		}
		found = true
		v := rootPage[at+pos+ksize : at+pos+ksize+vsize]
		if ne.Uint32(e)&bucketLeafFlag == 0 || ne.Uint64(v) != 0 || ne.Uint64(v[8:]) != 0x0123456789abcdef {
			t.Errorf("inline bucket element: flags %#x, header %x", ne.Uint32(e), v[:bucketHeaderSize])
		}
		if err := (&checker{}).elements(v, leafPageFlag, 0, true); err != nil {
			t.Errorf("inline bucket page: %v", err)
		}
	}
	if !found {
		t.Error("the root bucket's page has no inline bucket")
	}

	// precheck walks the whole tree: the pages it reaches are those bbolt
	// uses.
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := &checker{f: f, size: int64(len(b))}
	if err := c.run(); err != nil {
		t.Fatalf("precheck: %v", err)
	}
	for id, p := range pages {
		for o := range uint64(p.overflow + 1) {
			reached := c.seen[(id+o)/64]&(1<<((id+o)%64)) != 0
			if used := p.typ != "free"; reached != used {
				t.Errorf("page %d (%s): precheck reached it: %v", id+o, p.typ, reached)
			}
		}
	}
}
