package card

import (
	"errors"
	"slices"
	"testing"
)

// A mount table of a camera with an SD card, as Linux 6.1 writes it.
const cameraMounts = `22 1 179:2 / / rw,relatime shared:1 - ext4 /dev/mmcblk0p2 rw
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
40 22 179:97 / /mnt/sd\040card rw,nosuid,nodev,noatime shared:30 master:2 - vfat /dev/mmcblk1p1 rw,fmask=0022,dmask=0022,codepage=437,iocharset=ascii,shortname=mixed,errors=remount-ro
41 22 7:0 / /tmp/cardexp/mnt rw,relatime - ext4 /dev/loop0 rw,errors=remount-ro,emergency_ro
42 22 0:50 / /mnt/- rw - tmpfs - rw,size=4k
`

func TestParseMountInfo(t *testing.T) {
	ms, err := ParseMountInfo([]byte(cameraMounts))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 5 {
		t.Fatalf("%d mounts", len(ms))
	}
	sd := ms[2]
	if sd.Major != 179 || sd.Minor != 97 || sd.Point != "/mnt/sd card" || sd.FSType != "vfat" || sd.Source != "/dev/mmcblk1p1" ||
		!slices.Equal(sd.Options, []string{"rw", "nosuid", "nodev", "noatime"}) || !slices.Contains(sd.Super, "errors=remount-ro") || sd.ReadOnly() {
		t.Errorf("SD card: %+v", sd)
	}
	if !ms[3].ReadOnly() {
		t.Errorf("ext4 after an error (emergency_ro) is read-only: %+v", ms[3])
	}
	if ms[4].Point != "/mnt/-" || ms[4].Source != "-" || ms[4].FSType != "tmpfs" {
		t.Errorf("a dash for a name is not the separator: %+v", ms[4])
	}
	for _, bad := range []string{
		"22 1 179:2 / / rw,relatime shared:1 ext4 /dev/mmcblk0p2 rw",     // no separator
		"22 1 179 / / rw,relatime - ext4 /dev/mmcblk0p2 rw",              // no minor
		"22 1 179:2 / / rw - ext4 /dev/mmcblk0p2",                        // too few after it
		"22 1 179:x / / rw,relatime shared:1 - ext4 /dev/mmcblk0p2 rw",   // minor not a number
		"22 1 179:2 / / rw,relatime - ext4 /dev/mmcblk0p2 rw extra more", // too many
	} {
		if _, err := ParseMountInfo([]byte(bad + "\n")); !errors.Is(err, ErrMountInfo) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`/mnt/sd\040card`: "/mnt/sd card", `a\011b\012c\134d`: "a\tb\nc\\d", `\04`: `\04`, `\999`: `\999`, `end\`: `end\`,
	} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseMountInfo(f *testing.F) {
	f.Add([]byte(cameraMounts))
	f.Add([]byte("1 2 3:4 / / rw - a b c\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := ParseMountInfo(b)
		if err != nil && ms != nil {
			t.Fatal("mounts and an error")
		}
		for _, m := range ms {
			m.ReadOnly()
		}
	})
}
