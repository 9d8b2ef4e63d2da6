//go:build !linux

package card

import (
	"errors"
	"os"
)

// devOf returns the device number of the file system that holds path:
// only Linux tells (every card looks missing elsewhere).
func devOf(path string) (uint64, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, err
	}
	return 0, errors.ErrUnsupported
}

func splitDev(dev uint64) (major, minor uint32) { return uint32(dev >> 32), uint32(dev) }

type usage struct {
	total, free, used int64
	readOnly          bool
}

func space(string) (usage, error) { return usage{}, errors.ErrUnsupported }

func mount(device, point, fstype string, opts []string, data string) error {
	return errors.ErrUnsupported
}

func unmount(string) error { return errors.ErrUnsupported }

func exclusive(string) (bool, error) { return false, errors.ErrUnsupported }
