package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestInvitationInOpenTab opens a second invitation link in a tab that
// already shows camd: only the hash changes, the page is not loaded
// again, and it must pair all the same (hashchange).
func TestInvitationInOpenTab(t *testing.T) {
	d := startDaemon(t)
	ctx := browser(t)
	watch(t, ctx, d.inviteLink(t), false)
	users := func() int {
		var list []struct {
			ID string `json:"id"`
		}
		d.api(t, "/api/v1/users", &list)
		return len(list)
	}
	if n := users(); n != 2 {
		t.Fatalf("%d users after the first invitation, want the owner and the browser", n)
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(tctx, chromedp.Evaluate[bool](`window.samePage = true`)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(tctx, chromedp.Navigate(d.inviteLink(t))); err != nil {
		t.Fatal(err)
	}
	for users() != 3 {
		if tctx.Err() != nil {
			t.Fatalf("the page did not pair with the link opened in its tab (%d users)", users())
		}
		time.Sleep(100 * time.Millisecond)
	}
	same, err := chromedp.Run(tctx, chromedp.Evaluate[bool](`window.samePage === true && location.hash === ""`))
	if err != nil || !same {
		t.Fatalf("the page was loaded again or kept the code in its address (%v)", err)
	}
	watch := pollPage(t, tctx, `window.camd`, func(st viewerState) bool { return st.FramesDecoded > 10 })
	t.Logf("paired again in the same tab; playing %dx%d", watch.Width, watch.Height)
}
