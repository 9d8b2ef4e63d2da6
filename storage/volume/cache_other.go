//go:build !linux

package volume

import "os"

func randomAccess(*os.File) {}

func dropCache(*os.File) {}

func sequentialMapping(uintptr, int64) {}
