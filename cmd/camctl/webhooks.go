package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/notify/webhooks"
)

const webhooksUsage = `usage:
  camctl webhooks list
  camctl webhooks add [--types motion,call.*] URL
  camctl webhooks test ID
  camctl webhooks log ID
  camctl webhooks remove ID

Webhooks (docs/push.md), owners only: camd POSTs each event as JSON to
URL, signed per Standard Webhooks (webhook-id, webhook-timestamp,
webhook-signature). add prints the signing secret: the only time it is
shown. test sends a webhook.test message now; log shows the deliveries.
`

func webhooksCmd(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("camctl webhooks", flag.ContinueOnError)
	types := flags.String("types", "", "the event types it gets, comma-separated (family.* for a family); none: every type")
	return runVerb(flags, webhooksUsage, map[string]verb{
		"list": {0, func(cam *camera, _ []string) error {
			var hooks []webhooks.Hook
			if err := cam.do("GET", "/api/v1/webhooks", nil, &hooks); err != nil {
				return err
			}
			return printList(stdout, false, hooks, "ID\tURL\tTYPES\tSTATE\tQUEUED", func(h webhooks.Hook) []string {
				state := "on"
				switch {
				case !h.Disabled.IsZero():
					state = "disabled: " + h.DisabledReason
				case !h.FailingSince.IsZero():
					state = "failing since " + h.FailingSince.Local().Format(time.DateTime)
				}
				t := strings.Join(h.Types, ",")
				if t == "" {
					t = "all"
				}
				return []string{h.ID, h.URL, t, state, strconv.Itoa(h.Queued)}
			})
		}},
		"add": {1, func(cam *camera, args []string) error {
			req := api.WebhookRequest{URL: args[0]}
			if *types != "" {
				req.Types = strings.Split(*types, ",")
			}
			var h webhooks.Hook
			if err := cam.do("POST", "/api/v1/webhooks", req, &h); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "webhook %s added\nsecret: %s\n(shown once: give it to the receiver to verify webhook-signature)\n", h.ID, h.Secret)
			return nil
		}},
		"test": {1, func(cam *camera, args []string) error {
			var a webhooks.Attempt
			if err := cam.do("POST", "/api/v1/webhooks/"+url.PathEscape(args[0])+"/test", nil, &a); err != nil {
				return err
			}
			printAttempts(stdout, []webhooks.Attempt{a})
			if a.Status/100 != 2 {
				if a.Status == 0 {
					return fmt.Errorf("the test message was not delivered: %s", a.Error)
				}
				return fmt.Errorf("the receiver answered the test message with %d", a.Status)
			}
			return nil
		}},
		"log": {1, func(cam *camera, args []string) error {
			var log []webhooks.Attempt
			if err := cam.do("GET", "/api/v1/webhooks/"+url.PathEscape(args[0])+"/deliveries", nil, &log); err != nil {
				return err
			}
			printAttempts(stdout, log)
			return nil
		}},
		"remove": {1, func(cam *camera, args []string) error {
			if err := cam.do("DELETE", "/api/v1/webhooks/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "webhook %s removed\n", args[0])
			return nil
		}},
	}, args, stderr)
}

func printAttempts(w io.Writer, log []webhooks.Attempt) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tID\tTYPE\tATTEMPT\tOUTCOME\tSTATUS\tMS\tERROR")
	for _, a := range log {
		status := "-"
		if a.Status != 0 {
			status = fmt.Sprint(a.Status)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%.1f\t%s\n", a.Time.Local().Format(time.DateTime), a.ID, a.Type, a.Attempt, a.Outcome, status, a.Duration, a.Error)
	}
	tw.Flush()
}
