package sim_test

import (
	"context"
	"fmt"

	"github.com/camd-project/camd/board"
	"github.com/camd-project/camd/board/sim"
)

// A program presses the simulated pair button; the watcher reports the
// press once it is released (a 10 s hold would be a factory reset). It
// waits on the watcher's callbacks, never on a guess of how long the
// 30 ms debounce takes. (A test would rather run in a testing/synctest
// bubble, where the debounce and the 10 s hold pass on a fake clock: see
// the board package's documentation.)
func Example() {
	s, err := sim.New(sim.Options{})
	if err != nil {
		panic(err)
	}
	defer s.Board().Close()

	down, pressed := make(chan struct{}), make(chan struct{})
	w := board.NewWatcher(s.Board().PairButton, board.WatchOptions{
		Hold:    board.ResetHold,
		OnDown:  func() { close(down) },
		OnPress: func() { close(pressed) },
		OnHold:  func() { fmt.Println("factory reset") },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()

	s.Press(sim.PairButton)
	<-down // the press held for the debounce
	s.Release(sim.PairButton)
	<-pressed
	fmt.Println("pairing window opens")
	cancel()
	<-done
	// Output: pairing window opens
}
