// Package guestinit is what the init (PID 1) of an e2e guest booted
// under QEMU does first: mount the kernel's file systems, read its
// camd.* arguments from the kernel command line, load the kernel
// modules the host put in the initramfs, and bring up the loopback
// interface. The power-cut guest (e2e/cardguest) and the Wi-Fi guest
// (e2e/wifiguest) share it.
package guestinit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount mounts /proc, /sys, /dev (devtmpfs) and /tmp (tmpfs).
func Mount() error {
	for _, m := range []struct{ src, dst, fs string }{
		{"proc", "/proc", "proc"}, {"sys", "/sys", "sysfs"}, {"dev", "/dev", "devtmpfs"}, {"tmp", "/tmp", "tmpfs"},
	} {
		os.MkdirAll(m.dst, 0o755)
		if err := unix.Mount(m.src, m.dst, m.fs, 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s: %w", m.dst, err)
		}
	}
	return nil
}

// Args are the kernel command line's camd.KEY=VALUE arguments, by KEY.
func Args() map[string]string {
	b, _ := os.ReadFile("/proc/cmdline")
	args := map[string]string{}
	for _, f := range strings.Fields(string(b)) {
		if k, v, ok := strings.Cut(f, "="); ok && strings.HasPrefix(k, "camd.") {
			args[strings.TrimPrefix(k, "camd.")] = v
		}
	}
	return args
}

// LoadModules loads the kernel modules listed in dir/order, in order,
// each with its parameters in params (by module name, as "radios=2").
func LoadModules(dir string, params map[string]string) error {
	b, err := os.ReadFile(filepath.Join(dir, "order"))
	if err != nil {
		return err
	}
	for _, name := range strings.Fields(string(b)) {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		flags := 0
		if !strings.HasSuffix(name, ".ko") { // .ko.xz, .ko.zst: the kernel unpacks it
			flags = unix.MODULE_INIT_COMPRESSED_FILE
		}
		module, _, _ := strings.Cut(name, ".ko")
		err = unix.FinitModule(int(f.Fd()), params[module], flags)
		f.Close()
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("loading %s: %w", name, err)
		}
	}
	return nil
}

// LoopbackUp brings up lo in the caller's network namespace.
func LoopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	ifr.SetUint16(unix.IFF_UP | unix.IFF_LOOPBACK | unix.IFF_RUNNING)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}
