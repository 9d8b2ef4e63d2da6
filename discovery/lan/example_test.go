package lan_test

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/camd-project/camd/discovery"
	"github.com/camd-project/camd/discovery/lan"
)

// catalog is what an NVR tells Find: the cameras it has.
type catalog map[string]bool

func (c catalog) Added(id string, addrs []netip.Addr) bool {
	for _, a := range addrs {
		if c[a.String()] {
			return true
		}
	}
	return c[id]
}

// An NVR lists the cameras it could add, asking for 2 s on the
// interfaces camd would announce on. (Not run: it multicasts.)
func ExampleFind() {
	ifaces, why, err := discovery.ChooseInterfaces("0.0.0.0", nil)
	if err != nil || len(ifaces) == 0 {
		fmt.Println("not searching:", why, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cams, err := lan.Find(ctx, lan.Options{Interfaces: ifaces, Added: catalog{"10.0.0.30": true}})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range cams {
		fmt.Println(c.Kind, c.Name, c.Addrs, c.Paired != nil && *c.Paired)
	}
}
