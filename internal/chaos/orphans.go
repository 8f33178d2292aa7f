package chaos

import (
	"fmt"
	"sort"
	"strings"
)

// checkOrphans looks for work the outbox owes that nothing will do: a
// payment in confirming, canceling or unknown, or a cancel waiting or
// pending, with no live job (available, scheduled, retryable or running)
// whose args name it. A payment in unknown may instead be on the attention
// list, where an operator finds it; so may the cancels waiting on it. A
// waiting cancel has no job of its own by design (the confirm's job
// enqueues it when the confirm resolves), so a job for its payment counts.
//
// After a clean drain only the leftovers of a lost transition show up here;
// after a drain that timed out, it tells the stuck rows that nothing will
// move from those merely slow.
func checkOrphans(st *state, listed map[string]bool, rep *Report) {
	violate := func(format string, args ...any) {
		rep.Checked.Orphans++
		rep.Violations = append(rep.Violations, fmt.Sprintf(format, args...))
	}
	ids := make([]string, 0, len(st.payments))
	for id := range st.payments {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		p := st.payments[id]
		switch p.status {
		case "confirming", "canceling", "unknown":
		default:
			continue
		}
		rep.Checked.Owed++
		switch {
		case len(st.paymentJobs[id]) > 0:
			rep.Checked.WithJob++
		case p.status == "unknown" && listed[id]:
			rep.Checked.Listed++
		case p.status == "unknown":
			violate("orphan: payment %s is unknown, has no live job, and the attention list does not show it", id)
		default:
			violate("orphan: payment %s is %s and no live job will move it (cancels: %s)", id, p.status, formatCancels(p.cancels))
		}
	}

	ids = ids[:0]
	for id := range st.cancels {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		c := st.cancels[id]
		if c.status != "waiting" && c.status != "pending" {
			continue
		}
		rep.Checked.Owed++
		p := st.payments[c.paymentID]
		status := "missing"
		if p != nil {
			status = p.status
		}
		switch {
		case len(st.cancelJobs[id]) > 0 || len(st.paymentJobs[c.paymentID]) > 0:
			rep.Checked.WithJob++
		case status == "unknown" && listed[c.paymentID]:
			rep.Checked.Listed++
		default:
			violate("orphan: %s of payment %s (%s) has no live job", c, c.paymentID, status)
		}
	}
}

func formatCancels(cs []*ourCancel) string {
	if len(cs) == 0 {
		return "none"
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.String()
	}
	return strings.Join(parts, "; ")
}
