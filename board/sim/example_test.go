package sim_test

import (
	"context"
	"fmt"
	"time"

	"github.com/camd-project/camd/board"
	"github.com/camd-project/camd/board/sim"
)

// A test presses the simulated pair button; the watcher reports the
// press once it is released (a 10 s hold would be a factory reset).
func Example() {
	s, err := sim.New(sim.Options{})
	if err != nil {
		panic(err)
	}
	defer s.Board().Close()

	pressed := make(chan struct{})
	w := board.NewWatcher(s.Board().PairButton, board.WatchOptions{
		Hold:    board.ResetHold,
		OnPress: func() { close(pressed) },
		OnHold:  func() { fmt.Println("factory reset") },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()

	s.Press(sim.PairButton)
	time.Sleep(100 * time.Millisecond) // longer than the 30 ms debounce
	s.Release(sim.PairButton)
	<-pressed
	fmt.Println("pairing window opens")
	cancel()
	<-done
	// Output: pairing window opens
}
