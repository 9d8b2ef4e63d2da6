// Package card finds the memory card that recordings go to, and checks
// and formats it.
//
// A card is a mounted file system, not a directory: State looks for the
// nearest directory that exists at or above the recordings' directory
// and reports a card there only if its file system is not the device's
// own (its st_dev is not the root's or the data directory's), so that a
// card that is out never makes camd write to the device's flash. The
// mount table (/proc/self/mountinfo) names its device, file system type
// and options, and says whether the kernel made it read-only after an
// error (ro, or ext4's emergency_ro); /sys/dev/block says whether its
// device is still there (a card pulled out leaves its file system
// mounted); statfs says how full it is.
//
// Check and Format unmount the card, run the system's tools on its
// block device (fsck.vfat, fsck.exfat, e2fsck; mkfs.vfat, mkfs.exfat, or
// the commands configured) with a timeout and never through a shell,
// keep their output, and mount the card again where it was. Probe tells
// FAT, exFAT and ext file systems apart by their first sectors.
package card
