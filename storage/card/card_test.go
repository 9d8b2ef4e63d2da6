package card_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/storage/card"
	"github.com/camd-project/camd/storage/card/cardtest"
)

// newCard is the card expected at mnt/camd, with data on the device's
// own storage (a directory beside mnt).
func newCard(t *testing.T, mnt string, opts ...func(*card.Options)) *card.Card {
	t.Helper()
	o := card.Options{Path: filepath.Join(mnt, "camd"), Internal: []string{t.TempDir()}}
	for _, f := range opts {
		f(&o)
	}
	return card.New(o)
}

func TestNoCardIsTheDevicesOwnStorage(t *testing.T) {
	mnt := t.TempDir() // on the root's file system, or the data's
	st := newCard(t, mnt).State()
	if st.Mounted || st.Present || !errors.Is(st.Err, card.ErrNoCard) {
		t.Fatalf("an empty mount point is a card: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(mnt, "camd")); err == nil {
		t.Fatal("looking made the directory")
	}
}

// TestTmpfsCard: a card that is mounted, turns read-only, and goes away
// (a lazy unmount).
func TestTmpfsCard(t *testing.T) {
	testenv.Root(t, "mounting a tmpfs")
	mnt := t.TempDir()
	c := newCard(t, mnt)
	cardtest.Mount(t, "tmpfs", mnt, "-t", "tmpfs", "-o", "size=8m")
	st := c.State()
	if !st.Mounted || !st.Present || st.ReadOnly || st.Err != nil || st.MountPoint != mnt || st.FSType != "tmpfs" || st.TotalBytes != 8<<20 {
		t.Fatalf("mounted: %+v", st)
	}
	cardtest.Run(t, "mount", "-o", "remount,ro", mnt)
	if st := c.State(); !st.ReadOnly || !errors.Is(st.Err, syscall.EROFS) {
		t.Fatalf("read-only: %+v", st)
	}
	cardtest.Run(t, "umount", "-l", mnt)
	if st := c.State(); st.Mounted || st.Present || !errors.Is(st.Err, card.ErrNoCard) {
		t.Fatalf("unmounted: %+v", st)
	}
	// Nothing to check on a tmpfs.
	cardtest.Mount(t, "tmpfs", mnt, "-t", "tmpfs", "-o", "size=8m")
	if _, err := c.Check(context.Background(), nil, time.Minute); !errors.Is(err, card.ErrNotDevice) {
		t.Fatalf("check of a tmpfs: %v", err)
	}
}

// TestCardPulledOut: a card pulled from its slot leaves its file system
// mounted, but its block device is gone (here: a /sys/dev/block without
// it).
func TestCardPulledOut(t *testing.T) {
	mnt := t.TempDir()
	dev := cardtest.Loop(t, 32<<20, "mkfs.ext4", "-F", "-q")
	cardtest.Mount(t, dev, mnt)
	if st := newCard(t, mnt).State(); !st.Present || st.Err != nil || st.Device != dev {
		t.Fatalf("in its slot: %+v", st)
	}
	st := newCard(t, mnt, func(o *card.Options) { o.SysBlock = t.TempDir() }).State()
	if !st.Mounted || st.Present || !errors.Is(st.Err, card.ErrNoCard) || !strings.Contains(st.Err.Error(), "removed") {
		t.Fatalf("pulled out: %+v", st)
	}
}

// TestCheckAndFormatALoopCard checks a card whose ext4 file system the
// kernel found damaged and made read-only (camd unmounts it, e2fsck
// repairs it, camd mounts it again, writable), refuses to touch a card
// another program holds, and formats it.
func TestCheckAndFormatALoopCard(t *testing.T) {
	testenv.Tools(t, "e2fsck", "mkfs.ext4")
	mnt := filepath.Join(t.TempDir(), "sd")
	dev := cardtest.Loop(t, 32<<20, "mkfs.ext4", "-F", "-q")
	cardtest.Mount(t, dev, mnt, "-o", "errors=remount-ro,noatime")
	c := newCard(t, mnt)
	os.WriteFile(filepath.Join(mnt, "theirs"), []byte("x"), 0o600)
	syscall.Sync()

	cardtest.FailFS(t, dev)
	st := c.State()
	if !st.ReadOnly || !errors.Is(st.Err, syscall.EROFS) || st.Device != dev || st.FSType != "ext4" {
		t.Fatalf("damaged: %+v", st)
	}

	// Another program holds a file on it: nothing is run.
	f, err := os.Open(filepath.Join(mnt, "theirs"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Check(context.Background(), nil, time.Minute)
	f.Close()
	if !errors.Is(err, card.ErrUnmount) || res.Unmounted || res.Output != "" || !c.State().Mounted {
		t.Fatalf("check of a busy card: %+v, %v", res, err)
	}

	res, err = c.Check(context.Background(), nil, time.Minute)
	if err != nil || res.Outcome != "repaired" || res.ExitCode != 1 || !res.Unmounted || !res.Mounted || res.Error != "" ||
		strings.Join(res.Command, " ") != "e2fsck -p "+dev || !strings.Contains(res.Output, "errors") {
		t.Fatalf("check: %+v, %v", res, err)
	}
	st = c.State()
	if st.ReadOnly || st.Err != nil || !st.Mounted {
		t.Fatalf("after the check: %+v", st)
	}
	if b, _ := os.ReadFile(filepath.Join(mnt, "theirs")); string(b) != "x" {
		t.Error("the check lost a file")
	}
	if m, _ := c.Known(); !strings.Contains(strings.Join(m.Options, ","), "noatime") {
		t.Errorf("mounted again without its options: %+v", m)
	}
	if res, err = c.Check(context.Background(), nil, time.Minute); err != nil || res.Outcome != "clean" {
		t.Fatalf("second check: %+v, %v", res, err)
	}

	// A card lazily unmounted is still in its slot: checked as the last
	// one seen, and mounted again.
	cardtest.Run(t, "umount", "-l", mnt)
	if st := c.State(); st.Mounted || !st.Present || st.Device != dev {
		t.Fatalf("unmounted: %+v", st)
	}
	if res, err = c.Check(context.Background(), nil, time.Minute); err != nil || res.Unmounted || !res.Mounted || res.Outcome != "clean" {
		t.Fatalf("check of an unmounted card: %+v, %v", res, err)
	}

	res, err = c.Format(context.Background(), []string{"mkfs.ext4", "-F", "-q"}, time.Minute)
	if err != nil || res.Outcome != "formatted" || !res.Mounted || res.FSType != "ext4" {
		t.Fatalf("format: %+v, %v", res, err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "theirs")); err == nil {
		t.Error("the format kept a file")
	}

	// A command that does not finish in time is killed.
	res, err = c.Check(context.Background(), []string{"yes"}, 100*time.Millisecond)
	if err != nil || res.Outcome != "failed" || !strings.Contains(res.Error, "did not finish") || !res.Mounted {
		t.Fatalf("timeout: %+v, %v", res, err)
	}
}

// TestCheckOfACardMountedInAnotherNamespace: a mount namespace copied
// while the card was mounted (a service's private /tmp) keeps its file
// system mounted after camd unmounts it here. Nothing is run on it (a
// repair would corrupt it), the owner is told which process holds it,
// and the card is mounted again; once that process is gone the check
// runs.
func TestCheckOfACardMountedInAnotherNamespace(t *testing.T) {
	testenv.Tools(t, "e2fsck", "mkfs.ext4", "unshare")
	mnt := filepath.Join(t.TempDir(), "sd")
	dev := cardtest.Loop(t, 32<<20, "mkfs.ext4", "-F", "-q")
	cardtest.Mount(t, dev, mnt)
	c := newCard(t, mnt)
	if !c.State().Mounted {
		t.Fatalf("not mounted: %+v", c.State())
	}

	holder := exec.Command("unshare", "--mount", "--propagation", "private", "sleep", "600")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { holder.Wait(); close(exited) }()
	t.Cleanup(func() { holder.Process.Kill(); <-exited })
	self, _ := os.Readlink("/proc/self/ns/mnt")
	info := fmt.Sprintf("/proc/%d/mountinfo", holder.Process.Pid)
	testenv.Eventually(t, "the holder's own mount namespace", func() bool {
		ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", holder.Process.Pid))
		b, _ := os.ReadFile(info)
		return ns != "" && ns != self && strings.Contains(string(b), " "+mnt+" ")
	})

	res, err := c.Check(context.Background(), nil, time.Minute)
	want := fmt.Sprintf("pid %d (sleep)", holder.Process.Pid)
	if !errors.Is(err, card.ErrInUse) || !errors.Is(err, card.ErrUnmount) || !strings.Contains(err.Error(), want) ||
		res.Output != "" || res.Outcome != "" || !res.Unmounted || !res.Mounted || !strings.Contains(res.Error, want) {
		t.Fatalf("check of a card mounted elsewhere: %+v, %v", res, err)
	}
	if st := c.State(); !st.Mounted || st.Device != dev {
		t.Fatalf("not mounted again: %+v", st)
	}

	holder.Process.Kill()
	<-exited
	if res, err = c.Check(context.Background(), nil, time.Minute); err != nil || res.Outcome != "clean" || !res.Mounted {
		t.Fatalf("check once the holder is gone: %+v, %v", res, err)
	}
}

// TestFATAndExFATImages runs the default commands on image files, which
// this kernel cannot mount: the format for the card's size, Probe, and
// the check that repairs what a power cut leaves (FAT: the two tables
// differ and a cluster is lost; exFAT: the boot region's checksum is
// wrong, restored from its backup).
func TestFATAndExFATImages(t *testing.T) {
	testenv.Tools(t, "mkfs.vfat", "fsck.vfat", "mkfs.exfat", "fsck.exfat")
	for _, c := range []struct {
		name, fstype string
		mkfs         []string
		damage       func(t *testing.T, image string)
	}{
		{"FAT32", "vfat", card.DefaultFormat(32 << 30), func(t *testing.T, image string) {
			// Cluster 100 in use in the first table only.
			b := readAt(t, image, 0, 512)
			fat := int64(b[14]) | int64(b[15])<<8
			writeAt(t, image, fat*512+100*4, []byte{0xff, 0xff, 0xff, 0x0f})
		}},
		{"exFAT", "exfat", card.DefaultFormat(64 << 30), func(t *testing.T, image string) {
			// A bit of the volume serial number flipped (a byte written
			// as is equals the random serial's 1 time in 256).
			b := readAt(t, image, 100, 1)
			writeAt(t, image, 100, []byte{b[0] ^ 0x01})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			image := filepath.Join(t.TempDir(), "card.img")
			os.WriteFile(image, nil, 0o600)
			os.Truncate(image, 64<<20)
			cardtest.Run(t, append(c.mkfs, image)...)
			if got, err := card.Probe(image); got != c.fstype {
				t.Fatalf("probe: %q, %v", got, err)
			}
			check, err := card.DefaultCheck(c.fstype)
			if err != nil {
				t.Fatal(err)
			}
			c.damage(t, image)
			code, out := exitCode(t, append(check, image)...)
			if code != 1 {
				t.Fatalf("%v on a damaged card: exit %d\n%s", check, code, out)
			}
			if code, out := exitCode(t, append(check, image)...); code != 0 {
				t.Fatalf("%v after the repair: exit %d\n%s", check, code, out)
			}
		})
	}
	if _, err := card.Probe(os.Args[0]); !errors.Is(err, card.ErrUnknownFS) {
		t.Errorf("probe of a program: %v", err)
	}
	if _, err := card.DefaultCheck("ntfs"); !errors.Is(err, card.ErrNoCommand) {
		t.Errorf("check of ntfs: %v", err)
	}
}

func readAt(t *testing.T, path string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

func writeAt(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// exitCode runs a command and returns its exit code and output.
func exitCode(t *testing.T, argv ...string) (int, string) {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("%v: %v", argv, err)
	}
	if exit != nil {
		return exit.ExitCode(), string(out)
	}
	return 0, string(out)
}
