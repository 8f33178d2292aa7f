package chaos

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
)

// checkMoney holds every refund the gateway made to the cancel it was made
// for, and every cancel of ours to the gateway's record of it:
//
//   - each refund is under one of our cancel keys, cancel-<id> or
//     cancel-<id>-<n> (the relay moves a cancel to a new key only when the
//     gateway showed the old one unused), for a cancel of that payment;
//   - at most one refund per cancel, whatever its keys;
//   - nothing refunded beyond what the cancel asked: a partial cancel's
//     refund equals its amount, a whole cancel's the balance at the time;
//   - a cancel is done exactly when the gateway refunded it, by the amount
//     we recorded. A cancel of a payment left in unknown is excused (it is
//     listed for operators) from this last rule only;
//   - a refund the shop's staff made in the gateway's console (no key,
//     Console in the ledger) is no cancel of ours: it only lowers the
//     balance our whole cancels are held to, and in all the gateway never
//     refunded more than our cancels asked plus the console's refunds.
//
// A payment the gateway knows and no row of ours holds is checkLedger's to
// report.
func checkMoney(st *state, gw map[string]gatewaysim.LedgerEntry, rep *Report) {
	var order string // of the payment being checked
	violate := func(format string, args ...any) {
		rep.Violations = append(rep.Violations, fmt.Sprintf(format, args...)+order)
	}
	byKey, byOrder := paymentIndexes(st)
	keys := make([]string, 0, len(gw))
	for k := range gw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		e := gw[key]
		for _, r := range e.Refunds {
			if r.Console {
				rep.Unasked.ConsoleRefunds++
				rep.Unasked.ConsoleRefundAmount += r.Amount
			}
		}
		our := ourPaymentFor(byKey, byOrder, e)
		if our == nil {
			continue
		}
		order = fmt.Sprintf(" [%s order %s]", e.Gateway, e.OrderID)
		refunds := append([]gatewaysim.Refund(nil), e.Refunds...)
		sort.SliceStable(refunds, func(i, j int) bool { return refunds[i].At.Before(refunds[j].At) })

		balance := e.TotalAmount
		perCancel := map[string][]gatewaysim.Refund{}
		balanceBefore := map[string]int64{} // by cancel: the balance its first refund met
		var total, console, asked int64
		for _, r := range refunds {
			before := balance
			balance -= r.Amount
			total += r.Amount
			if r.Console {
				console += r.Amount
				continue
			}
			cancelID, ok := cancelIDOfKey(r.IdempotencyKey)
			if !ok {
				violate("payment %s: the gateway refunded %d under key %q, which is no cancel key of ours", our.id, r.Amount, r.IdempotencyKey)
				continue
			}
			perCancel[cancelID] = append(perCancel[cancelID], r)
			if len(perCancel[cancelID]) == 1 {
				balanceBefore[cancelID] = before
			}
			c := st.cancels[cancelID]
			switch {
			case c == nil:
				violate("payment %s: the gateway refunded %d under %q, for a cancel of which we have no row", our.id, r.Amount, r.IdempotencyKey)
				continue
			case c.paymentID != our.id:
				violate("payment %s: the gateway refunded %d under %q, a key of payment %s's %s", our.id, r.Amount, r.IdempotencyKey, c.paymentID, c)
				continue
			}
			rep.Checked.Refunds++
			if len(perCancel[cancelID]) > 1 {
				continue // reported once below
			}
			if c.amount > 0 && r.Amount != c.amount {
				violate("payment %s: %s was refunded %d under %q, not the %d it asked", our.id, c, r.Amount, r.IdempotencyKey, c.amount)
			}
			if c.amount == 0 && r.Amount != before {
				violate("payment %s: %s was refunded %d under %q, not the balance of %d it had then", our.id, c, r.Amount, r.IdempotencyKey, before)
			}
		}
		for cancelID, rs := range perCancel {
			if len(rs) > 1 {
				what := "cancel " + cancelID
				if c := st.cancels[cancelID]; c != nil {
					what = c.String()
				}
				violate("payment %s: %s refunded %d times: %s", our.id, what, len(rs), formatRefunds(rs))
			}
		}

		claimed := map[string]bool{} // console refunds already taken for one of our cancels
		for _, c := range our.cancels {
			rep.Checked.Cancels++
			rs := perCancel[c.id]
			switch {
			case c.amount > 0:
				asked += c.amount
			case len(rs) > 0:
				asked += balanceBefore[c.id] // a whole cancel asks the balance it meets
			}
			switch {
			case our.status == "unknown" && c.status != "done":
				rep.Checked.Unsettled++
			case c.status == "done" && len(rs) == 0 && consoleRefundTakenFor(e, c, claimed):
				// Toss echoes nothing of our key in its list of cancels: a
				// refund of exactly our cancel's amount, made by staff at the
				// balance our request carried after we sent it, cannot be
				// told from ours, and the relay takes it as ours (docs/design.md,
				// "A balance we cannot explain"). Money-wise that is right:
				// the refund the shop asked for happened once, and our
				// request, if it is ever performed, meets the moved balance.
				rep.Unasked.ConsoleRefundsTakenAsOurs++
			case c.status == "done" && len(rs) == 0:
				violate("payment %s: %s is done, but the gateway refunded nothing for it (its refunds: %s)", our.id, c, formatRefunds(refunds))
			case c.status == "done" && rs[0].Amount != c.canceledAmount:
				violate("payment %s: %s recorded %d refunded, the gateway refunded %d under %q", our.id, c, c.canceledAmount, rs[0].Amount, rs[0].IdempotencyKey)
			case c.status != "done" && len(rs) > 0:
				violate("payment %s (%s): %s is %s, yet the gateway refunded %s", our.id, our.status, c, c.status, formatRefunds(rs))
			}
		}
		if total > asked+console {
			violate("payment %s: the gateway refunded %d in all, more than our cancels asked (%d) plus the console's refunds (%d): %s",
				our.id, total, asked, console, formatRefunds(refunds))
		}
	}
}

// cancelIDOfKey returns the cancel a refund's Idempotency-Key belongs to:
// our keys are cancel-<cancel id> and, after the relay moved to a new key,
// cancel-<cancel id>-<n> with n from 2 (payment.NextCancelIdempotencyKey).
func cancelIDOfKey(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, "cancel-")
	const idLen = 36 // a UUID's text
	if !ok || len(rest) < idLen {
		return "", false
	}
	id, tail := rest[:idLen], rest[idLen:]
	if _, err := uuid.Parse(id); err != nil {
		return "", false
	}
	if tail == "" {
		return id, true
	}
	n, ok := strings.CutPrefix(tail, "-")
	if v, err := strconv.Atoi(n); !ok || err != nil || v < 2 || strconv.Itoa(v) != n {
		return "", false
	}
	return id, true
}

func formatRefunds(rs []gatewaysim.Refund) string {
	if len(rs) == 0 {
		return "none"
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		under := fmt.Sprintf("under %q", r.IdempotencyKey)
		if r.Console {
			under = "in the console"
		}
		parts[i] = fmt.Sprintf("%d %s at %s (%s)", r.Amount, under, r.At.UTC().Format("15:04:05.000"), r.TransactionKey)
	}
	return strings.Join(parts, "; ")
}

// consoleRefundTakenFor reports whether a cancel recorded done with no
// refund under its keys was matched to a console refund: a Toss refund of
// the ledger, made in the console, under the transaction key and of the
// amount the cancel recorded, not yet taken for another cancel (claimed,
// which it marks).
func consoleRefundTakenFor(e gatewaysim.LedgerEntry, c *ourCancel, claimed map[string]bool) bool {
	if e.Gateway != gatewaysim.GatewayToss || c.transactionKey == "" || claimed[c.transactionKey] {
		return false
	}
	for _, r := range e.Refunds {
		if r.Console && r.TransactionKey == c.transactionKey && r.Amount == c.canceledAmount {
			claimed[c.transactionKey] = true
			return true
		}
	}
	return false
}
