package card

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Result is what a check or a format did, for the owner to read.
type Result struct {
	// Device is the card's block device; FSType the file system found
	// on it afterwards.
	Device string `json:"device"`
	FSType string `json:"fs_type,omitempty"`
	// Command is what ran, the device last; ExitCode and Output (its
	// standard output and error, the last 64 KiB) what it said.
	Command  []string `json:"command"`
	ExitCode int      `json:"exit_code"`
	Output   string   `json:"output"`
	// Outcome is a check's "clean", "repaired" or "errors left" (by the
	// exit code, as fsck(8) defines it), a format's "formatted", or
	// "failed": the command failed, did not start or did not finish in
	// time.
	Outcome string `json:"outcome"`
	// Unmounted: camd unmounted the card first. Mounted: the card is
	// mounted again where it was.
	Unmounted bool    `json:"unmounted"`
	Mounted   bool    `json:"mounted"`
	Seconds   float64 `json:"seconds"`
	// Error says what went wrong besides the command's exit code: it
	// could not run, or the card could not be mounted again.
	Error string `json:"error,omitempty"`
}

// MaxOutput is how much of a command's output a Result keeps: its end.
const MaxOutput = 64 << 10

// DefaultCheck is the check-and-repair command for a file system type,
// without the device: fsck.vfat -a (FAT), fsck.exfat -y (exFAT; its -p
// leaves a damaged boot region, which -y restores from its backup),
// e2fsck -p (ext2/3/4).
func DefaultCheck(fstype string) ([]string, error) {
	switch fstype {
	case "vfat", "msdos", "fat":
		return []string{"fsck.vfat", "-a"}, nil
	case "exfat":
		return []string{"fsck.exfat", "-y"}, nil
	case "ext2", "ext3", "ext4":
		return []string{"e2fsck", "-p"}, nil
	}
	return nil, fmt.Errorf("%w: %q (set recording.fsck_command)", ErrNoCommand, fstype)
}

// DefaultFormat is the format command for a card of size bytes, without
// the device: exFAT above 32 GiB (as SDXC cards come), FAT32 up to it
// (SDHC).
func DefaultFormat(size int64) []string {
	if size > 32<<30 {
		return []string{"mkfs.exfat"}
	}
	return []string{"mkfs.vfat", "-F", "32"}
}

// Check unmounts the card, runs argv (DefaultCheck of its file system if
// empty) with its device as the last argument for at most timeout, and
// mounts it again where it was. A card camd cannot unmount is not
// touched: ErrUnmount. A card not mounted now is checked as the last one
// seen, and mounted afterwards.
func (c *Card) Check(ctx context.Context, argv []string, timeout time.Duration) (Result, error) {
	return c.operate(ctx, timeout, func(m Mount, _ int64) ([]string, error) {
		if len(argv) > 0 {
			return argv, nil
		}
		fstype := m.FSType
		if t, err := Probe(m.Source); err == nil {
			fstype = t
		}
		return DefaultCheck(fstype)
	}, func(code int) string {
		switch {
		case code == 0:
			return "clean"
		case code&^3 == 0:
			return "repaired"
		}
		return "errors left"
	})
}

// Format unmounts the card, runs argv (DefaultFormat of its size if
// empty) with its device as the last argument for at most timeout, and
// mounts the new file system where the card was. Everything on the card
// is lost.
func (c *Card) Format(ctx context.Context, argv []string, timeout time.Duration) (Result, error) {
	return c.operate(ctx, timeout, func(_ Mount, size int64) ([]string, error) {
		if len(argv) > 0 {
			return argv, nil
		}
		return DefaultFormat(size), nil
	}, func(code int) string {
		if code == 0 {
			return "formatted"
		}
		return "failed"
	})
}

// operate runs a command on the card's device with the card unmounted.
func (c *Card) operate(ctx context.Context, timeout time.Duration, command func(m Mount, size int64) ([]string, error), outcome func(code int) string) (Result, error) {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	st := c.State()
	m, ok := c.Known()
	switch {
	case st.Mounted && (!ok || st.Device != m.Source):
		return Result{}, fmt.Errorf("%w: %s is %s", ErrNotDevice, st.MountPoint, st.Device)
	case !ok:
		return Result{}, ErrUnknown
	}
	fi, err := os.Stat(m.Source)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrNoCard, err)
	}
	if fi.Mode()&os.ModeDevice == 0 {
		return Result{}, fmt.Errorf("%w: %s", ErrNotDevice, m.Source)
	}
	args, err := command(m, deviceSize(m.Source))
	if err != nil {
		return Result{}, err
	}
	res := Result{Device: m.Source, Command: append(slices.Clone(args), m.Source)}
	if st.Mounted {
		if err := unmount(m.Point); err != nil {
			res.Error = fmt.Sprintf("cannot unmount %s: %v", m.Point, err)
			return res, fmt.Errorf("%w: %s: %w", ErrUnmount, m.Point, err)
		}
		res.Unmounted = true
	}
	// Nothing may run on a file system mounted anywhere: at another
	// point here, or, unmounted here, in a mount namespace copied while
	// it was mounted (a service's private /tmp, ip netns exec) or lazily
	// unmounted with files open. Repairing or formatting it then would
	// corrupt it (only e2fsck looks); the card is mounted again.
	var busy error
	if at := c.mountedAt(m.Major, m.Minor); at != "" {
		busy = fmt.Errorf("%s is mounted at %s", m.Source, at)
	} else {
		busy = c.claimable(m)
	}
	if busy != nil {
		res.Error = busy.Error()
		if res.Unmounted {
			c.mountAgain(&res, m, m.FSType)
		}
		return res, fmt.Errorf("%w: %w", ErrUnmount, busy)
	}
	start := time.Now()
	// A client that goes away does not cut a repair short: only the
	// timeout does.
	code, out, err := run(context.WithoutCancel(ctx), res.Command, timeout)
	res.Seconds = time.Since(start).Seconds()
	res.ExitCode, res.Output, res.Outcome = code, out, outcome(code)
	if err != nil {
		res.Outcome, res.Error = "failed", err.Error()
	}
	res.FSType = m.FSType
	if t, err := Probe(m.Source); err == nil {
		res.FSType = t
	}
	c.mountAgain(&res, m, res.FSType)
	return res, nil
}

// mountAgain mounts the card's file system, now fstype, where m was, and
// notes in res whether it could.
func (c *Card) mountAgain(res *Result, m Mount, fstype string) {
	if err := c.remount(m, fstype); err != nil {
		res.Error = strings.TrimPrefix(res.Error+"; ", "; ") + fmt.Sprintf("cannot mount %s at %s: %v", m.Source, m.Point, err)
	} else {
		res.Mounted = true
	}
	c.State()
}

// mountedAt returns a mount point of major:minor, or "".
func (c *Card) mountedAt(major, minor uint32) string {
	return pointIn(c.opts.MountInfo, major, minor)
}

// pointIn returns a mount point of major:minor in the mount table at
// path (a mountinfo file), or "".
func pointIn(path string, major, minor uint32) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	ms, _ := ParseMountInfo(b)
	for _, m := range ms {
		if m.Major == major && m.Minor == minor {
			return m.Point
		}
	}
	return ""
}

// claimWait is how long claimable waits for the device to be free after
// an unmount.
const claimWait = 2 * time.Second

// claimable waits, for at most claimWait, until m's device can be
// claimed exclusively, and otherwise says who holds it.
func (c *Card) claimable(m Mount) error {
	deadline := time.Now().Add(claimWait)
	for {
		ok, err := exclusive(m.Source)
		switch {
		case ok:
			return nil
		case err != nil:
			return fmt.Errorf("cannot open %s: %w", m.Source, err)
		case time.Now().After(deadline):
			if pids := c.mountedElsewhere(m.Major, m.Minor); len(pids) > 0 {
				return fmt.Errorf("%s is still mounted in another mount namespace (%s): %w", m.Source, strings.Join(pids, ", "), ErrInUse)
			}
			return fmt.Errorf("%s is held by another program: %w", m.Source, ErrInUse)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mountedElsewhere names, as "pid N (command)", one process of each
// other mount namespace that has major:minor mounted (at most three).
func (c *Card) mountedElsewhere(major, minor uint32) []string {
	self, _ := os.Readlink("/proc/self/ns/mnt")
	dirs, _ := os.ReadDir("/proc")
	seen := map[string]bool{self: true}
	var pids []string
	for _, d := range dirs {
		if len(pids) == 3 {
			break
		}
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		dir := filepath.Join("/proc", d.Name())
		ns, err := os.Readlink(filepath.Join(dir, "ns/mnt"))
		if err != nil || seen[ns] {
			continue
		}
		if pointIn(filepath.Join(dir, "mountinfo"), major, minor) != "" {
			seen[ns] = true
			comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
			pids = append(pids, fmt.Sprintf("pid %s (%s)", d.Name(), strings.TrimSpace(string(comm))))
		}
	}
	return pids
}

// remount mounts the card's file system, now fstype, where m was, with
// m's options (its file system's too if the type is the same, unless
// they are refused).
func (c *Card) remount(m Mount, fstype string) error {
	var data []string
	if fstype == m.FSType {
		for _, o := range m.Super {
			if o != "rw" && o != "ro" && o != "emergency_ro" {
				data = append(data, o)
			}
		}
	}
	err := mount(m.Source, m.Point, fstype, m.Options, strings.Join(data, ","))
	if err != nil && len(data) > 0 {
		err = mount(m.Source, m.Point, fstype, m.Options, "")
	}
	return err
}

// tail keeps the last MaxOutput bytes written to it.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - MaxOutput; over > 0 {
		t.b = slices.Delete(t.b, 0, over)
	}
	return len(p), nil
}

// run runs argv, never through a shell, for at most timeout, and returns
// its exit code and output; err says why it did not run or finish.
func run(ctx context.Context, argv []string, timeout time.Duration) (code int, out string, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var t tail
	cmd.Stdout, cmd.Stderr = &t, &t
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	out = string(bytes.ToValidUTF8(t.b, []byte("?")))
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out, nil
	case ctx.Err() != nil:
		return -1, out, fmt.Errorf("card: %s did not finish within %v", argv[0], timeout)
	case errors.As(err, &exit):
		return exit.ExitCode(), out, nil
	}
	return -1, out, fmt.Errorf("card: %w", err)
}

// deviceSize returns the size of a block device (or file) in bytes, 0
// if unknown.
func deviceSize(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n, _ := f.Seek(0, io.SeekEnd)
	return n
}

// ErrUnknownFS: Probe found no file system it knows.
var ErrUnknownFS = errors.New("card: no FAT, exFAT or ext file system found")

// Probe reads which file system the device (or image file) at path
// holds, from its boot sector or superblock: "vfat" (FAT12, 16, 32),
// "exfat" or "ext4" (ext2, 3 and 4, which the ext4 driver mounts).
func Probe(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b := make([]byte, 2048)
	if _, err := io.ReadFull(f, b); err != nil {
		return "", fmt.Errorf("card: %s: %w", path, err)
	}
	return probe(b)
}

// probe tells a file system by its first 2 KiB.
func probe(b []byte) (string, error) {
	switch {
	case len(b) < 2048:
	case string(b[3:11]) == "EXFAT   ":
		return "exfat", nil
	case b[510] == 0x55 && b[511] == 0xAA && (string(b[82:90]) == "FAT32   " || string(b[54:59]) == "FAT12" || string(b[54:59]) == "FAT16"):
		return "vfat", nil
	case b[1024+56] == 0x53 && b[1024+57] == 0xEF:
		return "ext4", nil
	}
	return "", ErrUnknownFS
}
