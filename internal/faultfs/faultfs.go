package faultfs

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/camd-project/camd/internal/testenv"
)

// Op is a set of file operations a Fault applies to.
type Op uint32

// Operations.
const (
	// Read: read(2) and the page-ins of memory-mapped files.
	Read Op = 1 << iota
	// Write: write(2) and pwrite(2) (every write reaches the file
	// system: FUSE has no write-back cache here), and fallocate(2).
	Write
	// Fsync: fsync(2) and fdatasync(2).
	Fsync
	// Truncate: ftruncate(2) and truncate(2), which bbolt grows its
	// files with.
	Truncate
	// Create: creating files and directories.
	Create

	numOps = iota
)

func (o Op) index() int {
	for i := range numOps {
		if o == 1<<i {
			return i
		}
	}
	return -1
}

// Fault makes operations fail or stall.
type Fault struct {
	Ops Op `json:"ops"`
	// Err is what the operations return; 0 lets them go through (after
	// Delay).
	Err syscall.Errno `json:"err"`
	// Files limits the fault to files whose base name matches this
	// pattern (filepath.Match); "" means every file.
	Files string `json:"files,omitempty"`
	// Offset and Length limit a Read or Write fault to the operations
	// that touch these bytes of a file (bad sectors); Length 0 means the
	// whole file.
	Offset int64 `json:"offset,omitempty"`
	Length int64 `json:"length,omitempty"`
	// Delay holds each operation this long before it fails or goes
	// through; Heal releases the operations it holds at once.
	Delay time.Duration `json:"delay,omitempty"`
}

// covers reports whether the fault applies to n bytes at off of the file
// name (n < 0: an operation without a range).
func (ft *Fault) covers(name string, off, n int64) bool {
	if ft.Files != "" {
		if ok, _ := filepath.Match(ft.Files, filepath.Base(name)); !ok {
			return false
		}
	}
	if ft.Length == 0 || n < 0 {
		return true
	}
	return off < ft.Offset+ft.Length && ft.Offset < off+n
}

// Options change what Mount serves. The zero value is the loopback
// that injects faults.
type Options struct {
	// PowerCut makes a card whose power can be cut (Cut, CutAfter):
	// what is written reaches the backing directory at once, as before,
	// but the file system also remembers what of it is durable, which
	// is only what POSIX promises: a file's data and size once the file
	// was fsynced, a directory's entries (files created, renamed or
	// removed in it) once the directory was. A cut puts the durable
	// state in the backing directory and fails every operation from
	// then on; mounting again (PowerUp) is the power coming back. Hard
	// links, symbolic links, special files and copies inside the file
	// system are refused (ENOTSUP); directories are remembered by name,
	// so renaming one with durable entries is not modelled.
	PowerCut bool `json:"power_cut,omitempty"`
}

// FS is a mounted fault-injecting loopback file system.
type FS struct {
	// Dir is the mount point: the faulty card.
	Dir string
	// Backing is the directory behind it, which tests may read and
	// change directly, past the faults.
	Backing string
	// Options it was mounted with.
	Options Options

	mu    sync.Mutex
	cmd   *exec.Cmd
	ctl   io.WriteCloser
	reply *bufio.Reader
	exit  chan error
}

// command is what the client sends the server, one JSON line each: Do is
// "set" (Faults), "heal" or "hits", and for Options.PowerCut "cut" (Seed
// not 0: partly), "arm" (N), "settle" or "ops". The server answers each
// with a reply line.
type command struct {
	Do     string  `json:"do"`
	Faults []Fault `json:"faults,omitempty"`
	N      int     `json:"n,omitempty"`
	Seed   uint64  `json:"seed,omitempty"`
}

type reply struct {
	Hits []uint64 `json:"hits"`
	Ops  int      `json:"ops,omitempty"`
	Off  bool     `json:"off,omitempty"`
	Err  string   `json:"err,omitempty"`
}

// Set replaces the faults in force; they apply from the moment it
// returns.
func (f *FS) Set(faults ...Fault) error {
	_, err := f.call(command{Do: "set", Faults: faults})
	return err
}

// Heal removes every fault and releases the operations that Delay holds.
func (f *FS) Heal() error {
	_, err := f.call(command{Do: "heal"})
	return err
}

// Cut cuts the power now (Options.PowerCut): every operation fails with
// EIO from then on, and the backing directory holds what was durable,
// nothing else. Unmount, or PowerUp, afterwards.
func (f *FS) Cut() error {
	_, err := f.call(command{Do: "cut"})
	return err
}

// CutPartly cuts the power as Cut does, but the card also wrote, on its
// own before the cut, a part of what was not durable yet (chosen by
// seed, not 0): each write or size change since a file's last fsync is
// kept or lost, a write partly (sector by sector of 512 bytes), and each
// directory holds its durable entries or its current ones. That is what
// a real card may do: it writes back when it likes, in the order it
// likes, and may tear a write.
func (f *FS) CutPartly(seed uint64) error {
	_, err := f.call(command{Do: "cut", Seed: max(seed, 1)})
	return err
}

// CutAfter arms a cut: the power fails at the n-th operation that
// changes the card from now (1: the next one), which fails with EIO, as
// every one after it. An operation that changes the card is a create,
// mkdir, write, size change (truncate, fallocate), fsync of a file or a
// directory, unlink, rmdir or rename. Then call Cut (or CutPartly) to
// leave the card as the cut did.
func (f *FS) CutAfter(n int) error {
	_, err := f.call(command{Do: "arm", N: n})
	return err
}

// Operations counts the operations that changed the card since the mount
// (see CutAfter), and reports whether the power is off.
func (f *FS) Operations() (n int, off bool, err error) {
	r, err := f.call(command{Do: "ops"})
	return r.Ops, r.Off, err
}

// Settle makes everything durable, as sync(2) does.
func (f *FS) Settle() error {
	_, err := f.call(command{Do: "settle"})
	return err
}

// PowerUp unmounts a card whose power was cut and mounts its backing
// directory again at the same place, with the same options: the power
// is back, and the card holds what the cut left. What still has files
// of the old mount open gets errors from them.
func (f *FS) PowerUp() (*FS, error) {
	if err := f.Unmount(); err != nil {
		return nil, err
	}
	return MountWith(f.Dir, f.Backing, f.Options)
}

// Hits counts the operations of op that a fault failed or held since the
// mount (0 if the server is gone).
func (f *FS) Hits(op Op) uint64 {
	r, err := f.call(command{Do: "hits"})
	if i := op.index(); err == nil && i >= 0 && i < len(r.Hits) {
		return r.Hits[i]
	}
	return 0
}

func (f *FS) call(c command) (reply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctl == nil {
		return reply{}, errors.New("faultfs: unmounted")
	}
	b, _ := json.Marshal(c)
	if _, err := f.ctl.Write(append(b, '\n')); err != nil {
		return reply{}, fmt.Errorf("faultfs: server gone: %w", err)
	}
	line, err := f.reply.ReadBytes('\n')
	if err != nil {
		return reply{}, fmt.Errorf("faultfs: server gone: %w", err)
	}
	var r reply
	if err := json.Unmarshal(line, &r); err != nil {
		return reply{}, fmt.Errorf("faultfs: bad reply %q", line)
	}
	if r.Err != "" {
		return r, errors.New(r.Err)
	}
	return r, nil
}

// Unmount heals the file system and unmounts it (lazily if files are
// still open: they fail with ENOTCONN afterwards). It is safe to call
// twice.
func (f *FS) Unmount() error {
	f.mu.Lock()
	ctl := f.ctl
	f.ctl = nil
	f.mu.Unlock()
	if ctl == nil {
		return nil
	}
	ctl.Close() // the server heals, unmounts and exits
	select {
	case err := <-f.exit:
		if err != nil {
			return fmt.Errorf("faultfs: server: %w", err)
		}
		return nil
	case <-time.After(time.Minute): // a hung server, not a slow one: a loaded machine took over 10 s
		f.cmd.Process.Kill()
		<-f.exit
		detach(f.Dir)
		return errors.New("faultfs: server did not stop; killed")
	}
}

// serveEnv passes the mount to the server process.
const serveEnv = "CAMD_FAULTFS_SERVE"

type serveSpec struct {
	Dir, Backing string
	Options      Options
}

// Mount serves the directory backing at mountpoint (an empty directory)
// from a child process: the running test binary, which must declare the
// test that calls Serve. As root the child calls mount(2) itself;
// otherwise it needs fusermount3.
func Mount(mountpoint, backing string) (*FS, error) {
	return MountWith(mountpoint, backing, Options{})
}

// MountWith is Mount with options.
func MountWith(mountpoint, backing string, o Options) (*FS, error) {
	spec, _ := json.Marshal(serveSpec{Dir: mountpoint, Backing: backing, Options: o})
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		ctlR.Close()
		ctlW.Close()
		return nil, err
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFaultFSServer$", "-test.count=1")
	// A race-enabled server would sleep a second as it exits.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	cmd.Env = append(os.Environ(), serveEnv+"="+string(spec), "GORACE="+gorace)
	cmd.ExtraFiles = []*os.File{ctlR, repW} // fds 3 and 4
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	err = cmd.Start()
	ctlR.Close()
	repW.Close()
	if err != nil {
		ctlW.Close()
		repR.Close()
		return nil, fmt.Errorf("faultfs: start server: %w", err)
	}
	f := &FS{Dir: mountpoint, Backing: backing, Options: o, cmd: cmd, ctl: ctlW, reply: bufio.NewReader(repR), exit: make(chan error, 1)}
	go func() {
		err := cmd.Wait()
		repR.Close()
		if err != nil && stderr.Len() > 0 {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
		}
		f.exit <- err
	}()
	// The server's first reply says whether the mount worked.
	line, err := f.reply.ReadBytes('\n')
	var r reply
	if err == nil {
		err = json.Unmarshal(line, &r)
	}
	if err == nil && r.Err != "" {
		err = errors.New(r.Err)
	}
	if err != nil {
		ctlW.Close()
		if e := <-f.exit; e != nil {
			err = fmt.Errorf("%v (server: %v)", err, e)
		}
		if strings.Contains(stderr.String(), "no tests to run") {
			err = errors.New("faultfs: the test binary lacks TestFaultFSServer (see the package documentation)")
		}
		return nil, err
	}
	return f, nil
}

// Need skips the test where FUSE cannot be mounted (no /dev/fuse;
// neither root nor fusermount3), or fails it if CAMD_REQUIRE_TOOLS is
// set (internal/testenv). It always skips on 32-bit or non-Linux systems
// and under qemu-user, which cannot start the server.
func Need(tb testing.TB) {
	tb.Helper()
	if !supported {
		tb.Skip("faultfs: needs 64-bit Linux (go-fuse)")
	}
	if os.Getenv("CAMD_UNDER_QEMU") != "" {
		tb.Skip("faultfs: the FUSE server is a child process, which qemu-user does not run")
	}
	_, err := os.Stat("/dev/fuse")
	testenv.Need(tb, err == nil, "faultfs: no FUSE device: %v", err)
	if os.Geteuid() != 0 {
		_, err3 := exec.LookPath("fusermount3")
		_, err2 := exec.LookPath("fusermount")
		testenv.Need(tb, err3 == nil || err2 == nil, "faultfs: mounting FUSE needs root, or fusermount3 (Debian: fuse3)")
	}
}

// MountTemp mounts a new FS over a temporary directory at another one,
// unmounted when the test ends, after Need.
func MountTemp(tb testing.TB) *FS { return MountTempWith(tb, Options{}) }

// MountTempWith is MountTemp with options.
func MountTempWith(tb testing.TB, o Options) *FS {
	tb.Helper()
	Need(tb)
	f, err := MountWith(tb.TempDir(), tb.TempDir(), o)
	if err != nil {
		if strings.Contains(err.Error(), "lacks TestFaultFSServer") {
			tb.Fatal(err)
		}
		testenv.Need(tb, false, "faultfs: cannot mount: %v", err)
	}
	tb.Cleanup(func() {
		if err := f.Unmount(); err != nil {
			tb.Errorf("faultfs: unmount %s: %v", f.Dir, err)
		}
	})
	return f
}

// Serve is the body of the test that the server process runs (see the
// package documentation); in an ordinary run it skips.
func Serve(t *testing.T) {
	spec := os.Getenv(serveEnv)
	if spec == "" {
		t.Skip("faultfs: the FUSE server of other tests, run in a child process")
	}
	var s serveSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		t.Fatal(err)
	}
	ctl, rep := os.NewFile(3, "faultfs-ctl"), os.NewFile(4, "faultfs-reply")
	if err := serve(s.Dir, filepath.Clean(s.Backing), s.Options, ctl, rep); err != nil {
		t.Fatal(err)
	}
}

// injector holds the faults in force; the server consults it on every
// operation.
type injector struct {
	mu     sync.Mutex
	faults []Fault
	healed chan struct{} // closed by heal: releases held operations
	hits   [numOps]uint64

	backing string
	disk    *disk // Options.PowerCut
}

// change runs op, an operation that changes the card, and on a card
// whose power can be cut records what it did (record), both under the
// disk's lock, unless the power is off or fails now: EIO.
func (in *injector) change(op func() syscall.Errno, record func(*disk)) syscall.Errno {
	d := in.disk
	if d == nil {
		return op()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.gate(); err != nil {
		return syscall.EIO
	}
	errno := op()
	if errno == 0 {
		record(d)
	}
	return errno
}

// fsync runs a real fsync, except on a card whose power can be cut: the
// disk model says what is durable there, and the backing directory's
// own fsyncs would only slow the tests down.
func (in *injector) fsync(op func() syscall.Errno) syscall.Errno {
	if in.disk != nil {
		return 0
	}
	return op()
}

// record records under the disk's lock what an operation that changes
// nothing learnt.
func (in *injector) record(fn func(*disk)) {
	if d := in.disk; d != nil {
		d.mu.Lock()
		defer d.mu.Unlock()
		fn(d)
	}
}

// powered fails reads once the power is off.
func (in *injector) powered() syscall.Errno {
	if d := in.disk; d != nil {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.off {
			return syscall.EIO
		}
	}
	return 0
}

// power runs a power-cut command.
func (in *injector) power(c command) (reply, error) {
	d := in.disk
	if d == nil {
		return reply{}, errors.New("faultfs: not mounted with Options.PowerCut")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch c.Do {
	case "cut":
		var rng *rand.Rand
		if c.Seed != 0 {
			rng = rand.New(rand.NewPCG(c.Seed, c.Seed))
		}
		if err := restore(in.backing, d.cut(rng)); err != nil {
			return reply{}, fmt.Errorf("faultfs: cut: %w", err)
		}
	case "arm":
		d.cutAt = d.ops + c.N
	case "settle":
		d.settle()
	}
	return reply{Ops: d.ops, Off: d.off}, nil
}

func (in *injector) set(faults []Fault) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.faults = faults
	if in.healed == nil {
		in.healed = make(chan struct{})
	}
}

func (in *injector) heal() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.faults = nil
	if in.healed != nil {
		close(in.healed)
		in.healed = nil
	}
}

func (in *injector) counts() []uint64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]uint64(nil), in.hits[:]...)
}

// check applies the faults in force to an operation on n bytes at off of
// the file name (n < 0: an operation without a range); it returns the
// error to fail it with, or 0.
func (in *injector) check(op Op, name string, off, n int64) syscall.Errno {
	in.mu.Lock()
	var fault *Fault
	for i := range in.faults {
		if ft := &in.faults[i]; ft.Ops&op != 0 && ft.covers(name, off, n) {
			fault = ft
			break
		}
	}
	if fault == nil {
		in.mu.Unlock()
		return 0
	}
	in.hits[op.index()]++
	ft, healed := *fault, in.healed
	in.mu.Unlock()
	if ft.Delay > 0 {
		t := time.NewTimer(ft.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-healed:
			return 0
		}
	}
	return ft.Err
}

// control answers the client's commands until it closes its end.
func control(in *injector, ctl io.Reader, rep io.Writer) {
	enc := json.NewEncoder(rep)
	sc := bufio.NewScanner(ctl)
	for sc.Scan() {
		var c command
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			enc.Encode(reply{Err: "faultfs: bad command: " + err.Error()})
			continue
		}
		r := reply{}
		switch c.Do {
		case "set":
			in.set(c.Faults)
		case "heal":
			in.heal()
		case "hits":
		case "cut", "arm", "settle", "ops":
			var err error
			if r, err = in.power(c); err != nil {
				enc.Encode(reply{Err: err.Error()})
				continue
			}
		default:
			enc.Encode(reply{Err: fmt.Sprintf("faultfs: unknown command %q", c.Do)})
			continue
		}
		r.Hits = in.counts()
		enc.Encode(r)
	}
	in.heal()
}
