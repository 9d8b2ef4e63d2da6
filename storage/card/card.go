package card

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// Errors of a card.
var (
	// ErrNoCard: nothing but the device's own storage is mounted at the
	// recordings' directory or above it, or the card that was is gone.
	ErrNoCard = errors.New("card: no card")
	// ErrUnknown: no card was seen mounted since camd started, so its
	// block device is not known (a card whose file system the kernel
	// would not mount).
	ErrUnknown = errors.New("card: no card seen: its device is unknown")
	// ErrNotDevice: the file system is not on a block device (tmpfs,
	// FUSE): there is nothing to check or format.
	ErrNotDevice = errors.New("card: not a block device")
	// ErrUnmount: the card could not be unmounted (another program uses
	// it, or camd may not): nothing was run on it.
	ErrUnmount = errors.New("card: cannot unmount")
	// ErrInUse: unmounted here, the card's file system is still mounted
	// in another mount namespace or its device held by another program;
	// it is also ErrUnmount.
	ErrInUse = errors.New("card: still in use")
	// ErrNoCommand: no check is known for the file system.
	ErrNoCommand = errors.New("card: no check command for this file system")
)

// Options say where the card is expected. The zero value of each field
// but Path means its default.
type Options struct {
	// Path is the recordings' directory (recording.path), on the card or
	// to be made on it.
	Path string
	// Internal are directories on the device's own storage (the root and
	// the data directory): a card is a file system other than theirs.
	Internal []string
	// MountInfo is the mount table (default /proc/self/mountinfo).
	MountInfo string
	// SysBlock lists the block devices there are by major:minor (default
	// /sys/dev/block): a card pulled out of its slot leaves its file
	// system mounted, but its device is gone from here.
	SysBlock string
}

// State is what a card looks like now.
type State struct {
	// Present: the card's block device is there (for a file system
	// without one, a tmpfs or FUSE: it is mounted). A card can be
	// present and not mounted: its file system was not mounted, or camd
	// unmounted it to check it.
	Present bool `json:"present"`
	// Mounted: a file system other than the device's own is mounted at
	// the recordings' directory or above it.
	Mounted bool `json:"mounted"`
	// ReadOnly: writes to it fail (mounted read-only, or the kernel made
	// it so after an error).
	ReadOnly bool `json:"read_only"`
	// MountPoint, Device and FSType are the mount's (the last one seen
	// when the card is not mounted).
	MountPoint string `json:"mount_point,omitempty"`
	Device     string `json:"device,omitempty"`
	FSType     string `json:"fs_type,omitempty"`
	// TotalBytes, FreeBytes and UsedBytes are statfs's, while mounted.
	TotalBytes int64 `json:"total_bytes"`
	FreeBytes  int64 `json:"free_bytes"`
	UsedBytes  int64 `json:"used_bytes"`
	// Err says why the card cannot be written (ErrNoCard, or an error
	// that is syscall.EROFS), nil when it can.
	Err error `json:"-"`

	mount Mount
}

// Card is the card that recordings go to. It is safe for concurrent
// use.
type Card struct {
	opts Options
	// opMu lets one check or format run at a time.
	opMu sync.Mutex

	mu    sync.Mutex
	known Mount // the last mount seen with a device; Source "" for none
}

// New returns the card of opts.
func New(opts Options) *Card {
	if opts.MountInfo == "" {
		opts.MountInfo = "/proc/self/mountinfo"
	}
	if opts.SysBlock == "" {
		opts.SysBlock = "/sys/dev/block"
	}
	if p, err := filepath.Abs(opts.Path); err == nil {
		opts.Path = p
	}
	c := &Card{opts: opts}
	c.State()
	return c
}

// existing returns the nearest directory at or above path that exists,
// with symbolic links resolved.
func existing(path string) (string, error) {
	for {
		if fi, err := os.Stat(path); err == nil && fi.IsDir() {
			return filepath.EvalSymlinks(path)
		}
		parent := filepath.Dir(path)
		if parent == path {
			return "", fmt.Errorf("card: no directory at or above %s", path)
		}
		path = parent
	}
}

// State looks at the card: is a file system other than the device's
// own mounted at the recordings' directory or above it (the nearest
// directory there is: camd makes the directories below a card's mount
// point), is its device there, can it be written, how full is it.
func (c *Card) State() State {
	var st State
	dir, err := existing(c.opts.Path)
	if err != nil {
		st.Err = fmt.Errorf("%w: %v", ErrNoCard, err)
		return c.unmounted(st)
	}
	dev, err := devOf(dir)
	if err != nil {
		st.Err = fmt.Errorf("%w: %v", ErrNoCard, err)
		return c.unmounted(st)
	}
	for _, in := range append([]string{"/"}, c.opts.Internal...) {
		if d, err := existing(in); err == nil {
			if id, err := devOf(d); err == nil && id == dev {
				st.Err = fmt.Errorf("%w: %s is on the device's own storage", ErrNoCard, dir)
				return c.unmounted(st)
			}
		}
	}
	st.Mounted = true
	major, minor := splitDev(dev)
	if m, ok := c.find(major, minor, dir); ok {
		st.mount = m
		st.MountPoint, st.Device, st.FSType = m.Point, m.Source, m.FSType
		st.ReadOnly = m.ReadOnly()
		if major != 0 {
			c.mu.Lock()
			c.known = m
			c.mu.Unlock()
		}
	}
	st.Present = major == 0 || c.devicePresent(major, minor)
	sp, err := space(dir)
	if err == nil {
		st.TotalBytes, st.FreeBytes, st.UsedBytes = sp.total, sp.free, sp.used
		st.ReadOnly = st.ReadOnly || sp.readOnly
	}
	switch {
	case !st.Present:
		st.Err = fmt.Errorf("%w: the card at %s was removed", ErrNoCard, st.MountPoint)
	case st.ReadOnly:
		st.Err = fmt.Errorf("card: %s is read-only: %w", st.MountPoint, syscall.EROFS)
	}
	return st
}

// unmounted fills st for a card that is not mounted from the last one
// seen: its device may still be in its slot.
func (c *Card) unmounted(st State) State {
	c.mu.Lock()
	k := c.known
	c.mu.Unlock()
	if k.Source != "" {
		st.MountPoint, st.Device, st.FSType = k.Point, k.Source, k.FSType
		st.Present = c.devicePresent(k.Major, k.Minor)
	}
	return st
}

// devicePresent reports whether the block device major:minor exists.
func (c *Card) devicePresent(major, minor uint32) bool {
	_, err := os.Stat(filepath.Join(c.opts.SysBlock, fmt.Sprintf("%d:%d", major, minor)))
	return err == nil
}

// find looks the file system up in the mount table: of the mounts of
// major:minor, the one whose mount point is the nearest above dir.
func (c *Card) find(major, minor uint32, dir string) (Mount, bool) {
	b, err := os.ReadFile(c.opts.MountInfo)
	if err != nil {
		return Mount{}, false
	}
	ms, err := ParseMountInfo(b)
	if err != nil {
		return Mount{}, false
	}
	var best Mount
	found := false
	for _, m := range ms {
		if m.Major != major || m.Minor != minor || !within(dir, m.Point) {
			continue
		}
		if !found || len(m.Point) >= len(best.Point) {
			best, found = m, true
		}
	}
	return best, found
}

// within reports whether dir is point or below it.
func within(dir, point string) bool {
	if point == "/" || dir == point {
		return true
	}
	return strings.HasPrefix(dir, point+"/")
}

// Known returns the mount of the card last seen mounted on a block
// device, if any.
func (c *Card) Known() (Mount, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.known, c.known.Source != ""
}
