package connlimit_test

import (
	"fmt"
	"net"
	"net/http"

	"github.com/camd-project/camd/device/connlimit"
)

func ExampleNewListener() {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	// At most 64 connections, 8 from any one address; the rest are closed
	// as they arrive, before the server (or TLS) sees them.
	l := connlimit.NewListener(inner, connlimit.Options{Max: 64, MaxPerAddress: 8})
	srv := &http.Server{Handler: http.NotFoundHandler()}
	go srv.Serve(l)
	defer srv.Close()

	fmt.Printf("%+v\n", l.Stats())
	// Output: {Open:0 Accepted:0 RefusedMax:0 RefusedPerAddress:0}
}
