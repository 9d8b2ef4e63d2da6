//go:build !linux || 386 || arm || mips || mipsle

package faultfs

import (
	"encoding/json"
	"io"
)

const supported = false

func serve(mountpoint, backing string, o Options, ctl io.Reader, rep io.Writer) error {
	return json.NewEncoder(rep).Encode(reply{Err: "faultfs: needs 64-bit Linux"})
}

func detach(string) error { return nil }
