package discovery_test

import (
	"fmt"

	"github.com/camd-project/camd/discovery"
)

func ExampleInfo_TXT() {
	info := discovery.Info{ID: "MZRNXQUURH7XQZHN", Model: "generic", Firmware: "v0.3.0", Discriminator: 2652}
	txt := info.TXT()
	fmt.Println(txt)
	back, _ := discovery.ParseTXT(txt)
	fmt.Println(back.ID, back.Paired, back.Discriminator)
	// Output:
	// [txtvers=1 api=1 id=MZRNXQUURH7XQZHN model=generic fw=v0.3.0 paired=0 disc=2652]
	// MZRNXQUURH7XQZHN false 2652
}
