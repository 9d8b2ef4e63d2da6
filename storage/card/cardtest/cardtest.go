// Package cardtest makes memory cards for tests: image files on loop
// devices, formatted and mounted as a camera's SD card would be. It
// needs root, losetup and mount; a test is skipped without them (or
// fails, with CAMD_REQUIRE_TOOLS set).
package cardtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/camd-project/camd/internal/testenv"
)

// Loop attaches an image file of size bytes to a free loop device and
// returns the device, detached when the test ends. mkfs, if given, is
// the command that formats the image first (the image is appended:
// "mkfs.ext4", "-F", "-q").
func Loop(tb testing.TB, size int64, mkfs ...string) string {
	tb.Helper()
	testenv.Root(tb, "attaching a loop device")
	testenv.Tools(tb, "losetup", "mount", "umount")
	image := filepath.Join(tb.TempDir(), "card.img")
	if err := os.WriteFile(image, nil, 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.Truncate(image, size); err != nil {
		tb.Fatal(err)
	}
	if len(mkfs) > 0 {
		testenv.Tool(tb, mkfs[0])
		Run(tb, append(mkfs, image)...)
	}
	out, err := exec.Command("losetup", "--find", "--show", image).CombinedOutput()
	testenv.Need(tb, err == nil, "no loop device: %v %s", err, out)
	dev := strings.TrimSpace(string(out))
	tb.Cleanup(func() { exec.Command("losetup", "--detach", dev).Run() })
	return dev
}

// Mount mounts dev at dir (made if missing) with mount(8)'s options
// ("-o", "errors=remount-ro"), unmounted lazily when the test ends if
// it still is.
//
// dir's parent is first made a shared mount (bound onto itself), as a
// system's /media is: a mount namespace copied meanwhile by another test
// (ip netns exec makes its copy a slave) then loses the card when the
// card is unmounted here, instead of keeping its file system mounted
// and its device busy, which fsck refuses.
func Mount(tb testing.TB, dev, dir string, opts ...string) {
	tb.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	parent := filepath.Dir(dir)
	if exec.Command("mountpoint", "-q", parent).Run() != nil {
		Run(tb, "mount", "--bind", parent, parent)
		tb.Cleanup(func() { exec.Command("umount", "-l", parent).Run() })
		Run(tb, "mount", "--make-shared", parent)
	}
	Run(tb, append(append([]string{"mount"}, opts...), dev, dir)...)
	tb.Cleanup(func() { Unmount(dir, "-l") })
}

// Unmount unmounts dir with umount(8)'s options ("-l": lazily) if
// something is mounted there.
func Unmount(dir string, opts ...string) error {
	if exec.Command("mountpoint", "-q", dir).Run() != nil {
		return nil
	}
	return exec.Command("umount", append(opts, dir)...).Run()
}

// Run runs a command and fails the test with its output if it fails.
func Run(tb testing.TB, argv ...string) string {
	tb.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		tb.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// FailFS makes the kernel find an error in the ext4 file system on dev
// (/sys/fs/ext4/DEV/trigger_fs_error): mounted with errors=remount-ro,
// it turns read-only at once, as a card whose file system is damaged
// does, and is marked as having errors, so that a check has something
// to repair.
func FailFS(tb testing.TB, dev string) {
	tb.Helper()
	ctl := filepath.Join("/sys/fs/ext4", filepath.Base(dev), "trigger_fs_error")
	_, err := os.Stat(ctl)
	testenv.Need(tb, err == nil, "no %s: %v", ctl, err)
	if err := os.WriteFile(ctl, []byte("camd test: damaged card\n"), 0o200); err != nil {
		tb.Fatal(err)
	}
}
