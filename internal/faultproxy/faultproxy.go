// Package faultproxy is a TCP proxy in front of PostgreSQL that injects the
// faults a database client must survive and a plain network test cannot
// produce on cue: an acknowledgement of COMMIT lost after the server
// committed, and every connection cut at once (a network blip).
//
// It is built on toxiproxy (github.com/Shopify/toxiproxy/v2) used as a
// library, with two toxics of its own that read the PostgreSQL wire
// protocol (see toxic.go). Use it from tests and the chaos suite:
//
//	p, err := faultproxy.Start("127.0.0.1:5432")
//	defer p.Close()
//	// connect to p.Addr() instead of the server
//	p.LoseNextCommitAcks(1) // the next COMMIT commits, and its client gets a connection error
//	p.SetCommitLossRate(0.01)
//
// A lost acknowledgement is exactly this: the client sent COMMIT, the
// server committed and answered CommandComplete "COMMIT", and that answer
// (with anything after it) never reaches the client, whose connection is
// cut. pgx's Tx.Commit then returns a connection error although the
// transaction is durable: the client cannot tell it from a commit that
// never happened, which is the point. Only COMMITs that did commit count:
// a COMMIT of a failed transaction (answered "ROLLBACK") or one refused by
// the server passes through, and a forced loss waits for the next one.
//
// Connections that negotiate TLS or GSS encryption pass through untouched
// (nothing can be read); use sslmode=disable through the proxy.
package faultproxy

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// Proxy is one listening proxy in front of one PostgreSQL server. Its
// methods are safe for concurrent use.
type Proxy struct {
	tp  *toxiproxy.Proxy
	ctl *controller
}

// Stats counts what a Proxy saw and did since it started.
type Stats struct {
	// CommitsSeen counts the COMMITs clients sent through the proxy
	// (including those the server then answered with ROLLBACK or an error).
	CommitsSeen int64
	// AcksLost counts COMMITs the server committed whose acknowledgement
	// the proxy withheld, cutting the connection.
	AcksLost int64
	// ConnectionsCut counts connections cut by CutConnections.
	ConnectionsCut int64
}

// Start starts a proxy listening on a free loopback port (127.0.0.1:0) and
// forwarding to upstream, a host:port. No fault is on until asked for.
func Start(upstream string) (*Proxy, error) {
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	tp := toxiproxy.NewProxy(server, "postgres-"+upstream, "127.0.0.1:0", upstream)
	ctl := newController()
	// Both toxics go in before the proxy accepts a connection: their
	// per-connection states are then made only in the accept loop, in the
	// order that pairs them (frontendToxic.NewState).
	for _, t := range []struct{ typ, stream string }{
		{frontendToxicType, "upstream"},
		{backendToxicType, "downstream"},
	} {
		w, err := tp.Toxics.AddToxicJson(strings.NewReader(
			fmt.Sprintf(`{"type":%q,"stream":%q,"toxicity":1}`, t.typ, t.stream)))
		if err != nil {
			return nil, fmt.Errorf("error adding the %s toxic: %w", t.typ, err)
		}
		switch toxic := w.Toxic.(type) {
		case *frontendToxic:
			toxic.ctl = ctl
		case *backendToxic:
			toxic.ctl = ctl
		}
	}
	if err := tp.Start(); err != nil {
		return nil, fmt.Errorf("error starting proxy to %s: %w", upstream, err)
	}
	return &Proxy{tp: tp, ctl: ctl}, nil
}

// Addr is the host:port the proxy listens on.
func (p *Proxy) Addr() string {
	p.tp.Lock()
	defer p.tp.Unlock()
	return p.tp.Listen
}

// Upstream is the host:port the proxy forwards to.
func (p *Proxy) Upstream() string {
	return p.tp.Upstream
}

// SetCommitLossRate makes each COMMIT's acknowledgement lost with
// probability rate (0 turns the random loss off; forced losses stay).
func (p *Proxy) SetCommitLossRate(rate float64) {
	p.ctl.mu.Lock()
	defer p.ctl.mu.Unlock()
	p.ctl.rate = max(0, min(rate, 1))
}

// LoseNextCommitAcks forces the loss of the acknowledgements of the next n
// COMMITs that commit, whatever the rate: for deterministic tests. Calls
// add up.
func (p *Proxy) LoseNextCommitAcks(n int) {
	p.ctl.mu.Lock()
	defer p.ctl.mu.Unlock()
	p.ctl.forced += max(n, 0)
}

// CutConnections cuts every connection open through the proxy now, on
// both sides, as a network blip would, and returns how many it cut. New
// connections are accepted as before.
func (p *Proxy) CutConnections() int {
	p.ctl.mu.Lock()
	conns := make([]*conn, 0, len(p.ctl.conns))
	for c := range p.ctl.conns {
		conns = append(conns, c)
	}
	p.ctl.cut += int64(len(conns))
	p.ctl.mu.Unlock()
	for _, c := range conns {
		c.cutNow()
	}
	return len(conns)
}

// Stats returns the counts so far.
func (p *Proxy) Stats() Stats {
	p.ctl.mu.Lock()
	defer p.ctl.mu.Unlock()
	return Stats{CommitsSeen: p.ctl.seen, AcksLost: p.ctl.lost, ConnectionsCut: p.ctl.cut}
}

// Close stops listening and closes every connection through the proxy.
// Clients then get "connection refused" from its address.
func (p *Proxy) Close() {
	p.tp.Stop()
}

// controller is the state one Proxy's toxics share: the fault settings,
// the counts, and the open connections.
type controller struct {
	mu       sync.Mutex
	rng      *rand.Rand
	rate     float64
	forced   int
	seen     int64
	lost     int64
	cut      int64
	conns    map[*conn]struct{}
	unpaired *conn
}

func newController() *controller {
	return &controller{
		rng:   rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		conns: map[*conn]struct{}{},
	}
}

// connOpened registers a new connection and leaves it for the backend
// toxic's NewState to pair with.
func (ctl *controller) connOpened(c *conn) {
	ctl.mu.Lock()
	defer ctl.mu.Unlock()
	ctl.conns[c] = struct{}{}
	ctl.unpaired = c
}

func (ctl *controller) takeUnpaired() *conn {
	ctl.mu.Lock()
	defer ctl.mu.Unlock()
	c := ctl.unpaired
	ctl.unpaired = nil
	return c
}

func (ctl *controller) connClosed(c *conn) {
	ctl.mu.Lock()
	defer ctl.mu.Unlock()
	delete(ctl.conns, c)
}

// commitSeen counts a COMMIT going to the server and decides whether its
// acknowledgement is lost: a forced loss first, else a draw at the rate.
// alreadyLosing is true when an earlier COMMIT of the same round trip is
// already marked: one cut covers both, so no second loss is spent.
func (ctl *controller) commitSeen(alreadyLosing bool) (lose, forced bool) {
	ctl.mu.Lock()
	defer ctl.mu.Unlock()
	ctl.seen++
	switch {
	case alreadyLosing:
		return false, false
	case ctl.forced > 0:
		ctl.forced--
		return true, true
	case ctl.rate > 0 && ctl.rng.Float64() < ctl.rate:
		return true, false
	}
	return false, false
}

func (ctl *controller) ackLost() {
	ctl.mu.Lock()
	defer ctl.mu.Unlock()
	ctl.lost++
}

// lossUnused takes back a loss decided for a COMMIT that did not commit; a
// forced one is owed to the next COMMIT.
func (ctl *controller) lossUnused(forced bool) {
	if !forced {
		return
	}
	ctl.mu.Lock()
	defer ctl.mu.Unlock()
	ctl.forced++
}
