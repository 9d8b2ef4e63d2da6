package main

import (
	"flag"
	"slices"
	"strings"
)

// parseFlags parses args with fs, taking flags before, between and after
// the positional arguments (`camctl pair CODE --store F` as well as
// `camctl pair --store F CODE`); everything after "--" is positional.
// fs.Args() then holds the positional arguments in their order.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return fs.Parse(append([]string{"--"}, pos...))
}

// cameraValueFlags are the flags every verb that talks to a camera
// takes, with a value: they may come before the verb.
var cameraValueFlags = []string{"store", "device", "addr"}

// verbFirst moves the flags given before the verb (`camctl --store F
// view`) after the verb's words, where the verb's own parsing takes them.
func verbFirst(args []string) []string {
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "-" && args[i] != "--" {
		name := strings.TrimLeft(args[i], "-")
		if !strings.Contains(name, "=") && slices.Contains(cameraValueFlags, name) {
			i++ // its value
		}
		i++
	}
	if i == 0 || i >= len(args) {
		return args
	}
	return append(slices.Clone(args[i:]), args[:i]...)
}
