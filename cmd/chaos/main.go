// Command chaos runs the chaos suite (make chaos): payments through the real
// api, relays and gatewaysim with injected faults, relays SIGKILLed and
// frozen, Postgres restarted and failed over to a synchronous standby,
// COMMIT acknowledgements lost, gateway requests held, and money moved
// without our asking (PortOne customers who never confirm or pay late,
// console refunds, webhooks delayed, duplicated and dropped); then every
// money invariant checked against the gateway's ledger. It exits 1 on any
// violation.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/payment-outbox/payment-outbox/internal/chaos"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

func run(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	var cfg chaos.Config
	fs.IntVar(&cfg.Payments, "payments", 2000, "payments to push")
	fs.Float64Var(&cfg.PortOneShare, "portone-share", 0.3, "share of payments taken through PortOne V2 rather than Toss")
	fs.IntVar(&cfg.Concurrency, "concurrency", 32, "checkout clients at once")
	fs.IntVar(&cfg.Relays, "relays", 2, "relay processes")
	fs.IntVar(&cfg.Kills, "kills", 6, "relay SIGKILLs over the run")
	fs.IntVar(&cfg.Pauses, "pauses", 2, "relay SIGSTOPs, each outlasting RELAY_RESCUE_AFTER (25s) so another relay rescues its jobs (needs -relays 2 or more)")
	fs.IntVar(&cfg.PostgresRestarts, "pg-restarts", 2, "Postgres primary restarts over the run")
	fs.BoolVar(&cfg.Failover, "failover", true, "run a synchronous standby and fail over to it mid-run")
	fs.Float64Var(&cfg.CommitLossRate, "commit-loss-rate", 0.01, "chance a COMMIT of the api or a relay commits and its acknowledgement is lost")
	fs.Float64Var(&cfg.HoldRate, "hold-rate", 0.02, "chance the gateway holds a confirm or cancel past the relay's 2s timeout")
	fs.DurationVar(&cfg.HoldFor, "hold-for", 3*time.Second, "how long a held gateway request is held (more than 2s)")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "random seed (0: from the clock; printed, so a run can be repeated)")
	fs.Float64Var(&cfg.ErrorRate, "error-rate", 0.08, "chance a gateway call gets an injected error")
	fs.Float64Var(&cfg.LostRate, "lost-rate", 0.03, "chance a performed gateway call loses its response")
	fs.DurationVar(&cfg.Latency, "latency", 2*time.Millisecond, "gateway latency")
	fs.DurationVar(&cfg.Jitter, "jitter", 15*time.Millisecond, "extra random gateway latency up to this")
	fs.DurationVar(&cfg.Downtime, "downtime", 2*time.Second, "length of the gateway's downtime window")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", 5*time.Minute, "how long the outbox may take to drain")
	fs.Float64Var(&cfg.NeverConfirmRate, "never-confirm-rate", 0.05, "share of PortOne payments paid in the browser and never confirmed with us")
	fs.Float64Var(&cfg.CancelUnconfirmedRate, "cancel-unconfirmed-rate", 0.3, "share of those the checkout cancels later, still without a confirm")
	fs.Float64Var(&cfg.LatePayRate, "late-pay-rate", 0.03, "share of PortOne payments whose customer walks away, is marked expired, then pays")
	fs.Float64Var(&cfg.ConsoleRefundRate, "console-refund-rate", 0.02, "share of charged payments the shop's staff refund (part or all) in the gateway's console")
	fs.Float64Var(&cfg.WebhookDropRate, "webhook-drop-rate", 0.05, "chance a gateway webhook (PortOne's, Toss's) is never sent")
	fs.Float64Var(&cfg.WebhookDuplicateRate, "webhook-duplicate-rate", 0.05, "chance a gateway webhook is sent twice")
	fs.DurationVar(&cfg.WebhookDelay, "webhook-delay", 100*time.Millisecond, "how long every gateway webhook is held back")
	fs.DurationVar(&cfg.WebhookJitter, "webhook-jitter", 1500*time.Millisecond, "extra random hold of a gateway webhook up to this (so they come out of order)")
	fs.Float64Var(&cfg.VAShare, "va-share", 0.1, "share of payments (both gateways) paid by virtual account: deposits early, late, of another amount (refunded to an account the harness supplies), or never")
	fs.Float64Var(&cfg.ForgedDepositRate, "forged-deposit-rate", 0.3, "share of the Toss virtual-account payments whose DEPOSIT_CALLBACK an attacker also posts with a wrong secret")
	fs.DurationVar(&cfg.SettleTimeout, "settle-timeout", 2*time.Minute, "how long after the drain the gateway's unasked-for money may take to settle here")
	jsonOut := fs.String("json", "", "also write the report as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	// A flag's 0 is "none"; the Config's zero is "the default".
	for _, r := range []*float64{&cfg.NeverConfirmRate, &cfg.CancelUnconfirmedRate, &cfg.LatePayRate, &cfg.ConsoleRefundRate,
		&cfg.WebhookDropRate, &cfg.WebhookDuplicateRate} {
		if *r < 0 || *r > 1 {
			fmt.Fprintln(os.Stderr, "chaos: rates must be in [0, 1]")
			return 2
		}
		if *r == 0 {
			*r = -1
		}
	}
	for _, d := range []*time.Duration{&cfg.WebhookDelay, &cfg.WebhookJitter} {
		if *d < 0 {
			fmt.Fprintln(os.Stderr, "chaos: -webhook-delay and -webhook-jitter must not be negative")
			return 2
		}
		if *d == 0 {
			*d = -1
		}
	}
	if cfg.NeverConfirmRate+cfg.LatePayRate > 1 {
		fmt.Fprintln(os.Stderr, "chaos: -never-confirm-rate and -late-pay-rate add up to more than all PortOne payments")
		return 2
	}
	if cfg.Payments <= 0 || cfg.Concurrency <= 0 || cfg.Relays <= 0 || cfg.Kills < 0 || cfg.Pauses < 0 || cfg.PostgresRestarts < 0 {
		fmt.Fprintln(os.Stderr, "chaos: payments, concurrency and relays must be positive; kills, pauses and pg-restarts not negative")
		return 2
	}
	for _, r := range []float64{cfg.ErrorRate, cfg.LostRate, cfg.CommitLossRate, cfg.HoldRate, cfg.PortOneShare} {
		if r < 0 || r > 1 {
			fmt.Fprintln(os.Stderr, "chaos: rates must be in [0, 1]")
			return 2
		}
	}
	if cfg.Pauses > 0 && cfg.Relays < 2 {
		fmt.Fprintln(os.Stderr, "chaos: -pauses needs -relays 2 or more: a live relay rescues the paused one's jobs")
		return 2
	}
	if cfg.HoldRate > 0 && cfg.HoldFor <= 2*time.Second {
		fmt.Fprintln(os.Stderr, "chaos: -hold-for must exceed the relay's 2s gateway timeout")
		return 2
	}
	cfg.Log = os.Stderr
	cfg.DatabaseURL = os.Getenv("CHAOS_DATABASE_URL")

	rep, err := chaos.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaos: %v\n", err)
		return 1
	}
	print(rep)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "chaos: %v\n", err)
			return 1
		}
	}
	if len(rep.Violations) > 0 {
		return 1
	}
	return 0
}

func print(rep *chaos.Report) {
	fmt.Printf("\nchaos run (seed %d) in %s\n", rep.Seed, rep.Duration.Round(time.Second))
	fmt.Printf("  %-26s %d\n", "payments", rep.Payments)
	states := make([]string, 0, len(rep.Outcomes))
	for s := range rep.Outcomes {
		states = append(states, s)
	}
	sort.Strings(states)
	for _, s := range states {
		fmt.Printf("    %-24s %d\n", s, rep.Outcomes[s])
	}
	for _, g := range []string{"toss", "portone"} {
		byStatus := rep.ByGateway[g]
		total := 0
		for _, n := range byStatus {
			total += n
		}
		fmt.Printf("    %-24s %d %v\n", "via "+g, total, byStatus)
	}
	fmt.Printf("  %-26s %d written, %d received and verified, %d refused on purpose, %d bad signatures\n", "webhooks",
		rep.Webhooks.Written, rep.Webhooks.Received, rep.Webhooks.Refused, rep.Webhooks.BadSignatures)
	for _, g := range []string{"portone", "toss", "toss-deposit"} {
		h := rep.GatewayWebhooks[g]
		fmt.Printf("  %-26s %d events: %d dropped, %d duplicated, %d deliveries delayed; %d delivered, %d given up\n", g+" webhooks",
			h.Events, h.Dropped, h.Duplicated, h.Delayed, h.Delivered, h.GivenUp)
	}
	u := rep.Unasked
	fmt.Printf("  %-26s %d (%d canceled by the checkout unconfirmed); %d adopted, %d refunded\n", "never confirmed",
		u.NeverConfirmed, u.CanceledUnconfirmed, u.Adopted, u.Refunded)
	fmt.Printf("  %-26s %d\n", "late payments", u.LatePayments)
	fmt.Printf("  %-26s %d (%d in all; %d refused; %d taken for a cancel of the same amount)\n", "console refunds", u.ConsoleRefunds, u.ConsoleRefundAmount, u.ConsoleRefused, u.ConsoleRefundsTakenAsOurs)
	fmt.Printf("  %-26s %d\n", "charged, not settled here", u.ChargedUnsettled)
	va := u.VA
	fmt.Printf("  %-26s %v: %d waited, %d deposits, %d missed their due date; %d held for a refund account, %d given one; %d forged DEPOSIT_CALLBACKs (%d answered 2xx)\n",
		"virtual accounts", va.Payments, va.Waited, va.Deposits, va.Missed, va.Held, va.AccountsGiven, va.Forged, va.ForgedAccepted)
	b := rep.Books
	fmt.Printf("  %-26s %d runs after the drain: %d transactions, %d matched, %d differences\n", "reconciliation",
		b.Runs, b.Transactions, b.Matched, b.Differences)
	fmt.Printf("  %-26s %d\n", "gateway calls", rep.GatewayCalls)
	outcomes := make([]string, 0, len(rep.GatewayOutcomes))
	for o := range rep.GatewayOutcomes {
		outcomes = append(outcomes, o)
	}
	sort.Strings(outcomes)
	for _, o := range outcomes {
		fmt.Printf("    %-24s %d\n", o, rep.GatewayOutcomes[o])
	}
	fmt.Printf("  %-26s %d\n", "faults injected", rep.FaultsInjected)
	fmt.Printf("  %-26s %d\n", "responses lost", rep.LostResponses)
	fmt.Printf("  %-26s %d\n", "answers replayed by key", rep.Replayed)
	fmt.Printf("  %-26s %d\n", "gateway calls timed out", rep.GatewayTimeouts)
	fmt.Printf("  %-26s %d\n", "relay SIGKILLs", rep.Kills)
	fmt.Printf("  %-26s %d (%d jobs stuck in running, %d rescued meanwhile)\n", "relay pauses", rep.Pauses, rep.PausedJobs, rep.RescuedWhilePaused)
	fmt.Printf("  %-26s %d\n", "postgres restarts", rep.PostgresRestarts)
	fmt.Printf("  %-26s %d\n", "postgres failovers", rep.Failovers)
	fmt.Printf("  %-26s %d of %d\n", "commit acks lost", rep.CommitAcksLost, rep.CommitsSeen)
	fmt.Printf("  %-26s %d (%d answers replayed by key)\n", "api calls retried", rep.APIRetries, rep.APIReplayed)
	fmt.Printf("  %-26s %d\n", "left unknown", rep.Unknown)
	c := rep.Checked
	fmt.Printf("  %-26s %d payments, %d refunds, %d cancels\n", "checked", c.Payments, c.Refunds, c.Cancels)
	fmt.Printf("  %-26s %d (%d with a live job, %d listed for attention, %d orphans)\n", "owed after the drain", c.Owed, c.WithJob, c.Listed, c.Orphans)
	if c.Unsettled > 0 {
		fmt.Printf("  %-26s %d\n", "cancels of unknown payments", c.Unsettled)
	}
	for _, s := range rep.Skipped {
		fmt.Printf("  %-26s %s\n", "skipped", s)
	}
	fmt.Printf("  %-26s %d\n", "violations", len(rep.Violations))
	for i, v := range rep.Violations {
		if i == 50 {
			fmt.Printf("    … and %d more\n", len(rep.Violations)-50)
			break
		}
		fmt.Printf("    %s\n", v)
	}
}
