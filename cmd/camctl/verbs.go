package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// A verb is one action of a command that talks to a camera (`camctl
// webhooks add URL`): how many words follow it and what it does with
// the camera and those words.
type verb struct {
	args int // how many words come after the verb; anyArgs: run checks them
	run  func(cam *camera, args []string) error
}

// anyArgs as a verb's args: its run takes the words that follow it and
// returns errUsage when they do not fit (an optional word: camctl update
// apply [VERSION]).
const anyArgs = -1

// errUsage from a verb's run: the words or flags given do not fit; the
// command prints its usage and camctl exits 2.
var errUsage = errors.New("camctl: usage")

// runVerb runs a command's verb from its table: the first word of args
// that is not a flag. fs holds the command's own flags (declared by the
// caller, read by the verbs' run functions); the camera flags are added
// here, and flags may come before or after the words. A verb not in the
// table, or given the wrong number of words, prints usage (exit 2); a
// verb's error is said on stderr after the command's name (exit 1).
func runVerb(fs *flag.FlagSet, usage string, verbs map[string]verb, args []string, stderr io.Writer) int {
	fs.SetOutput(stderr)
	cf := addCameraFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return 2
	}
	words := fs.Args()
	var v verb
	ok := len(words) > 0
	if ok {
		v, ok = verbs[words[0]]
	}
	if n := len(words) - 1; !ok || n != v.args && v.args != anyArgs {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cam, err := cf.open()
	if err == nil {
		err = v.run(cam, words[1:])
	}
	switch {
	case errors.Is(err, errUsage):
		fmt.Fprint(stderr, usage)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "%s %s: %v\n", fs.Name(), words[0], err)
		return 1
	}
	return 0
}

// printList prints list as JSON with asJSON, else as a table: the
// header's tab-separated columns, then a row of cells per item.
func printList[T any](w io.Writer, asJSON bool, list []T, header string, row func(T) []string) error {
	if asJSON {
		printJSON(w, list)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, x := range list {
		fmt.Fprintln(tw, strings.Join(row(x), "\t"))
	}
	return tw.Flush()
}
