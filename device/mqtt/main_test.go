package mqtt

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test's clients stop their goroutines. paho finishes tearing a
// connection down after Disconnect returns (its comms goroutines wait
// for each other): those are left to it; one run in about 25 under a
// load of 15 still had them running when the tests ended.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/eclipse/paho%2emqtt%2egolang.startComms.func2"),
		goleak.IgnoreTopFunction("github.com/eclipse/paho%2emqtt%2egolang.startOutgoingComms.func1"),
		goleak.IgnoreAnyFunction("github.com/eclipse/paho%2emqtt%2egolang.startComms.func3"),
		goleak.IgnoreAnyFunction("github.com/eclipse/paho%2emqtt%2egolang.(*client).stopCommsWorkers.func1"),
	)
}
