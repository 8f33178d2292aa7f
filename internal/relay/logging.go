package relay

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// ctxKeyLogger carries the logger of the job being worked.
type ctxKeyLogger struct{}

// withJob returns ctx carrying a logger whose every line names the job and
// the payment it is about, so no line about a payment can leave them out.
// Each worker calls it first thing; every log line below takes its logger
// from the context (logger).
func (r *relay) withJob(ctx context.Context, job *rivertype.JobRow, paymentID string, attrs ...any) context.Context {
	l := r.log.With(
		slog.String("payment_id", paymentID),
		slog.Int64("job_id", job.ID),
		slog.String("job_kind", job.Kind),
		slog.Int("job_attempt", job.Attempt),
	)
	if len(attrs) > 0 {
		l = l.With(attrs...)
	}
	return context.WithValue(ctx, ctxKeyLogger{}, l)
}

// logger returns the job's logger from ctx, or the relay's outside a job.
func (r *relay) logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(ctxKeyLogger{}).(*slog.Logger); ok {
		return l
	}
	return r.log
}

// JobLogging puts payment_id on River's own log lines about a payment job
// ("Job errored; retrying" after every transient answer, a panic, a job
// stuck past its timeout), which carry only River's job_id and kind. The
// relay's own lines get it from withJob; River's are written by River's
// logger, after the job's work has returned, so nothing in the job's context
// reaches them.
//
// Install it as River middleware (it notes the payment of each job it sees
// worked) and wrap River's logger's handler with Handler (which adds the
// noted payment to lines naming the job):
//
//	jl := relay.NewJobLogging()
//	river.Config{Logger: slog.New(jl.Handler(logger.Handler())), Middleware: []rivertype.Middleware{jl}}
type JobLogging struct {
	river.MiddlewareDefaults

	mu       sync.Mutex
	payments map[int64]string
	// ring holds the job ids in payments in the order they were noted, so
	// the oldest is forgotten first. It only has to outlast a job's own log
	// lines, which come while it runs or just after; with at most a few
	// hundred jobs running per relay, jobLoggingMemory is plenty.
	ring []int64
	next int
}

// jobLoggingMemory is how many jobs JobLogging remembers.
const jobLoggingMemory = 4096

// NewJobLogging returns a JobLogging that remembers no job yet.
func NewJobLogging() *JobLogging {
	return &JobLogging{payments: make(map[int64]string, jobLoggingMemory), ring: make([]int64, jobLoggingMemory)}
}

// Work implements rivertype.WorkerMiddleware: it notes the payment the job
// is about (the paymentId of its args; jobs without one are not noted) and
// works it.
func (j *JobLogging) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	var args struct {
		PaymentID string `json:"paymentId"`
	}
	if json.Unmarshal(job.EncodedArgs, &args) == nil && args.PaymentID != "" {
		j.note(job.ID, args.PaymentID)
	}
	return doInner(ctx)
}

func (j *JobLogging) note(jobID int64, paymentID string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, ok := j.payments[jobID]; ok {
		j.payments[jobID] = paymentID
		return
	}
	if old := j.ring[j.next]; old != 0 {
		delete(j.payments, old)
	}
	j.ring[j.next] = jobID
	j.next = (j.next + 1) % len(j.ring)
	j.payments[jobID] = paymentID
}

func (j *JobLogging) paymentOf(jobID int64) (string, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	id, ok := j.payments[jobID]
	return id, ok
}

// Handler wraps h so that a line with a job_id JobLogging has noted, and no
// payment_id yet, gets the job's payment_id.
func (j *JobLogging) Handler(h slog.Handler) slog.Handler {
	return &jobLogHandler{next: h, jobs: j}
}

// jobLogHandler is the slog.Handler of JobLogging.Handler.
type jobLogHandler struct {
	next slog.Handler
	jobs *JobLogging
	// hasPayment: attributes added with WithAttrs already carry a
	// payment_id, so none is added again.
	hasPayment bool
	// inGroup: WithGroup was called, so an added payment_id would land in
	// the group rather than at the top level; lines pass unchanged.
	inGroup bool
}

// Enabled implements slog.Handler.
func (h *jobLogHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle implements slog.Handler.
func (h *jobLogHandler) Handle(ctx context.Context, rec slog.Record) error {
	if h.hasPayment || h.inGroup {
		return h.next.Handle(ctx, rec)
	}
	var jobID int64
	found, hasPayment := false, false
	rec.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "payment_id":
			hasPayment = true
		case "job_id":
			if a.Value.Kind() == slog.KindInt64 {
				jobID, found = a.Value.Int64(), true
			}
		}
		return true
	})
	if found && !hasPayment {
		if id, ok := h.jobs.paymentOf(jobID); ok {
			rec = rec.Clone()
			rec.AddAttrs(slog.String("payment_id", id))
		}
	}
	return h.next.Handle(ctx, rec)
}

// WithAttrs implements slog.Handler.
func (h *jobLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	nh := *h
	nh.next = h.next.WithAttrs(attrs)
	for _, a := range attrs {
		if a.Key == "payment_id" {
			nh.hasPayment = true
		}
	}
	return &nh
}

// WithGroup implements slog.Handler.
func (h *jobLogHandler) WithGroup(name string) slog.Handler {
	nh := *h
	nh.next = h.next.WithGroup(name)
	nh.inGroup = nh.inGroup || name != ""
	return &nh
}
