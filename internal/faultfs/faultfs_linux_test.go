package faultfs

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestFaultFSServer(t *testing.T) { Serve(t) }

func TestFaults(t *testing.T) {
	f := MountTemp(t)
	path := filepath.Join(f.Dir, "vol-1.db")
	if err := os.WriteFile(path, make([]byte, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(f.Backing, "vol-1.db")); err != nil || len(b) != 8192 {
		t.Fatalf("backing file: %d bytes, %v", len(b), err)
	}
	file, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	// readFresh reads past the page cache, as a page-in after eviction.
	readFresh := func() error {
		unix.Fadvise(int(file.Fd()), 0, 0, unix.FADV_DONTNEED)
		_, err := file.ReadAt(make([]byte, 4096), 4096)
		return err
	}
	cases := []struct {
		name  string
		fault Fault
		op    Op
		do    func() error
	}{
		{"write", Fault{Ops: Write, Err: syscall.EIO}, Write, func() error { _, err := file.WriteAt([]byte("x"), 10); return err }},
		{"fsync", Fault{Ops: Fsync, Err: syscall.EIO}, Fsync, file.Sync},
		{"fdatasync", Fault{Ops: Fsync, Err: syscall.EIO}, Fsync, func() error { return unix.Fdatasync(int(file.Fd())) }},
		{"read", Fault{Ops: Read, Err: syscall.EIO}, Read, readFresh},
		{"truncate", Fault{Ops: Truncate, Err: syscall.ENOSPC}, Truncate, func() error { return file.Truncate(1 << 20) }},
		{"create", Fault{Ops: Create, Err: syscall.EROFS}, Create, func() error { return os.WriteFile(filepath.Join(f.Dir, "new"), nil, 0o600) }},
		{"mkdir", Fault{Ops: Create, Err: syscall.EIO}, Create, func() error { return os.Mkdir(filepath.Join(f.Dir, "d"), 0o700) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.Set(c.fault)
			before := f.Hits(c.op)
			if err := c.do(); !errors.Is(err, c.fault.Err) {
				t.Errorf("with the fault: %v, want %v", err, c.fault.Err)
			}
			if f.Hits(c.op) == before {
				t.Error("the fault was not counted")
			}
			f.Heal()
			if err := c.do(); err != nil {
				t.Errorf("healed: %v", err)
			}
		})
	}
	t.Run("set nothing", func(t *testing.T) {
		f.Set(Fault{Ops: Write, Err: syscall.EIO})
		if err := f.Set(); err != nil {
			t.Fatal(err)
		}
		if _, err := file.WriteAt([]byte("x"), 0); err != nil {
			t.Errorf("no fault in force: %v", err)
		}
	})
	t.Run("files", func(t *testing.T) {
		f.Set(Fault{Ops: Write, Err: syscall.EIO, Files: "vol-*.db"})
		defer f.Heal()
		if err := os.WriteFile(filepath.Join(f.Dir, "catalog.db"), []byte("ok"), 0o600); err != nil {
			t.Errorf("a file the fault does not match: %v", err)
		}
		if _, err := file.WriteAt([]byte("x"), 0); !errors.Is(err, syscall.EIO) {
			t.Errorf("a matching file: %v", err)
		}
	})
	t.Run("bad sectors", func(t *testing.T) {
		f.Set(Fault{Ops: Read | Write, Err: syscall.EIO, Files: "vol-1.db", Offset: 4096, Length: 4096})
		defer f.Heal()
		unix.Fadvise(int(file.Fd()), 0, 0, unix.FADV_DONTNEED)
		if _, err := file.ReadAt(make([]byte, 100), 0); err != nil {
			t.Errorf("read before the bad sectors: %v", err)
		}
		if _, err := file.ReadAt(make([]byte, 100), 5000); !errors.Is(err, syscall.EIO) {
			t.Errorf("read of a bad sector: %v", err)
		}
		if _, err := file.WriteAt([]byte("x"), 8191); !errors.Is(err, syscall.EIO) {
			t.Errorf("write to a bad sector: %v", err)
		}
		if _, err := file.WriteAt([]byte("x"), 8192); err != nil {
			t.Errorf("write after the bad sectors: %v", err)
		}
	})
	t.Run("stall", func(t *testing.T) {
		f.Set(Fault{Ops: Fsync, Delay: time.Minute})
		before := f.Hits(Fsync)
		go func() { time.Sleep(200 * time.Millisecond); f.Heal() }()
		start := time.Now()
		if err := file.Sync(); err != nil {
			t.Error(err)
		}
		if d := time.Since(start); d < 150*time.Millisecond || d > 10*time.Second {
			t.Errorf("fsync held %v; Heal released it after 200ms", d)
		}
		if f.Hits(Fsync) != before+1 {
			t.Errorf("%d fsyncs held, want 1", f.Hits(Fsync)-before)
		}
	})
}
