package faultproxy

import (
	"encoding/binary"
	"sync"

	"github.com/Shopify/toxiproxy/v2/stream"
	"github.com/Shopify/toxiproxy/v2/toxics"
)

// The lost COMMIT acknowledgement is two toxics on each connection, one per
// direction, sharing a conn:
//
//   - the frontend toxic (client → Postgres) reads the client's messages,
//     recognises each COMMIT the client has the server execute (a simple
//     Query, or an Execute of a portal bound to a Parse of COMMIT) and
//     decides there whether its acknowledgement is lost. It never holds
//     anything back: the COMMIT reaches the server, which commits.
//   - the backend toxic (Postgres → client) reads the server's answers and,
//     in the round trip of a COMMIT marked lost, stops at its CommandComplete
//     "COMMIT": that message and everything after it are never passed on,
//     and the connection is cut on both sides.
//
// Cutting on the way back rather than right after forwarding the COMMIT is
// what makes the fault exact: the server's answer cannot race the cut, and
// a CommandComplete "COMMIT" is proof the server did commit (a COMMIT of a
// failed transaction answers "ROLLBACK", and an error at commit answers
// ErrorResponse; both then reach the client untouched).

const (
	frontendToxicType = "faultproxy_pg_frontend"
	backendToxicType  = "faultproxy_pg_backend"
)

func init() {
	toxics.Register(frontendToxicType, new(frontendToxic))
	toxics.Register(backendToxicType, new(backendToxic))
}

// roundTrip is what the frontend recorded about one request cycle: the
// messages up to a Query, Sync or FunctionCall, which the server answers
// with ReadyForQuery.
type roundTrip struct {
	commit bool // a COMMIT was executed in it
	lose   bool // and its acknowledgement is to be lost
	forced bool // the loss was forced (LoseNextCommitAcks), not drawn
}

// conn is the state of one proxied connection shared by its two toxics.
type conn struct {
	ctl *controller

	mu sync.Mutex
	// trips are the round trips the client has sent and the server has not
	// yet finished answering, oldest first.
	trips []roundTrip
	// pendingSingles counts SSLRequest and GSSENCRequest sent, whose
	// one-byte answers the backend has not read yet.
	pendingSingles int
	// opaque: the stream is encrypted (or not one we can read); both
	// toxics pass it through untouched.
	opaque bool

	cut     chan struct{}
	cutOnce sync.Once
}

func (c *conn) cutNow() {
	c.cutOnce.Do(func() { close(c.cut) })
}

func (c *conn) setOpaque() {
	c.mu.Lock()
	c.opaque = true
	c.mu.Unlock()
}

func (c *conn) isOpaque() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opaque
}

// frontendState is the frontend toxic's parse state of one connection.
type frontendState struct {
	conn    *conn
	framer  framer
	cur     roundTrip
	stmts   map[string]bool // prepared statement name → is a COMMIT
	portals map[string]bool // portal name → bound to a COMMIT statement
}

// backendState is the backend toxic's parse state of one connection.
type backendState struct {
	conn   *conn
	framer framer
	// ready: the startup's ReadyForQuery has been seen; every later one
	// ends a round trip.
	ready bool
}

// frontendToxic sees what the client sends. One instance serves every
// connection of a Proxy in that direction; per-connection state lives in
// the stub (toxiproxy's StatefulToxic).
type frontendToxic struct {
	ctl *controller
}

// NewState is called by toxiproxy for each new connection, for its
// client → server link first and its server → client link right after, in
// the proxy's accept loop (and only there: the toxics are added before the
// proxy accepts anything, so never for links that already exist). That
// order is what pairs the two halves of a connection.
func (t *frontendToxic) NewState() interface{} {
	c := &conn{ctl: t.ctl, cut: make(chan struct{})}
	t.ctl.connOpened(c)
	return &frontendState{
		conn:    c,
		framer:  framer{untyped: true},
		stmts:   map[string]bool{},
		portals: map[string]bool{},
	}
}

// Pipe passes the client's bytes on unchanged, reading them on the way.
func (t *frontendToxic) Pipe(stub *toxics.ToxicStub) {
	st := stub.State.(*frontendState)
	c := st.conn
	for {
		select {
		case <-stub.Interrupt:
			return
		case <-c.cut:
			closeAndDrain(stub)
			t.ctl.connClosed(c)
			return
		case chunk := <-stub.Input:
			if chunk == nil {
				stub.Close()
				t.ctl.connClosed(c)
				return
			}
			if !c.isOpaque() {
				// Parsed (and any loss decided) before the bytes go on,
				// so the backend toxic knows before the server answers.
				_, _ = st.framer.feed(chunk.Data, st.handle)
			}
			select {
			case stub.Output <- chunk:
			case <-c.cut:
				closeAndDrain(stub)
				t.ctl.connClosed(c)
				return
			}
		}
	}
}

// handle reads one client message; it never cuts.
func (st *frontendState) handle(m message) bool {
	c := st.conn
	if m.typ == 0 {
		if len(m.body) < 4 {
			return false
		}
		switch binary.BigEndian.Uint32(m.body[:4]) {
		case codeSSLRequest, codeGSSENCRequest:
			// Answered by one byte; on 'N' the startup message follows.
			c.mu.Lock()
			c.pendingSingles++
			c.mu.Unlock()
			st.framer.untyped = true
		case codeCancelRequest:
			c.setOpaque()
		}
		return false
	}
	switch m.typ {
	case 'Q':
		if sql, _, ok := cstring(m.body); ok && !m.truncated && isCommit(sql) {
			st.sawCommit()
		}
		st.endTrip()
	case 'P': // Parse: statement name, query, parameter types
		name, rest, ok := cstring(m.body)
		if !ok {
			return false
		}
		sql, _, ok := cstring(rest)
		st.stmts[name] = ok && isCommit(sql)
	case 'B': // Bind: portal name, statement name, ...
		portal, rest, ok := cstring(m.body)
		if !ok {
			return false
		}
		stmt, _, ok := cstring(rest)
		st.portals[portal] = ok && st.stmts[stmt]
	case 'E': // Execute: portal name, row limit
		if portal, _, ok := cstring(m.body); ok && st.portals[portal] {
			st.sawCommit()
		}
	case 'C': // Close: 'S' statement or 'P' portal, name
		if len(m.body) > 0 {
			if name, _, ok := cstring(m.body[1:]); ok {
				if m.body[0] == 'S' {
					delete(st.stmts, name)
				} else {
					delete(st.portals, name)
				}
			}
		}
	case 'S', 'F': // Sync, FunctionCall: each answered by ReadyForQuery
		st.endTrip()
	}
	return false
}

func (st *frontendState) sawCommit() {
	lose, forced := st.conn.ctl.commitSeen(st.cur.lose)
	st.cur.commit = true
	if lose {
		st.cur.lose, st.cur.forced = true, forced
	}
}

func (st *frontendState) endTrip() {
	c := st.conn
	c.mu.Lock()
	c.trips = append(c.trips, st.cur)
	c.mu.Unlock()
	st.cur = roundTrip{}
}

// backendToxic sees what the server answers.
type backendToxic struct {
	ctl *controller
}

// NewState pairs this connection's server → client link with the
// client → server link whose state was made just before (see
// frontendToxic.NewState).
func (t *backendToxic) NewState() interface{} {
	c := t.ctl.takeUnpaired()
	if c == nil {
		// Only if toxiproxy ever starts links in another order: then this
		// connection passes through untouched rather than cutting the
		// wrong one.
		c = &conn{ctl: t.ctl, cut: make(chan struct{}), opaque: true}
	}
	return &backendState{conn: c}
}

// Pipe passes the server's bytes on, up to the acknowledgement of a COMMIT
// marked lost.
func (t *backendToxic) Pipe(stub *toxics.ToxicStub) {
	st := stub.State.(*backendState)
	c := st.conn
	for {
		select {
		case <-stub.Interrupt:
			return
		case <-c.cut:
			closeAndDrain(stub)
			return
		case chunk := <-stub.Input:
			if chunk == nil {
				stub.Close()
				return
			}
			out, cut := chunk.Data, false
			if !c.isOpaque() {
				c.mu.Lock()
				st.framer.singles += c.pendingSingles
				c.pendingSingles = 0
				c.mu.Unlock()
				out, cut = st.framer.feed(chunk.Data, st.handle)
			}
			if len(out) > 0 {
				select {
				case stub.Output <- &stream.StreamChunk{Data: out, Timestamp: chunk.Timestamp}:
				case <-c.cut:
					closeAndDrain(stub)
					return
				}
			}
			if cut {
				c.cutNow()
				closeAndDrain(stub)
				return
			}
		}
	}
}

// handle reads one server message and reports whether to cut before it.
func (st *backendState) handle(m message) bool {
	c := st.conn
	if m.single {
		if m.typ != 'N' {
			// 'S' or 'G': encryption follows, which we cannot read.
			c.setOpaque()
		}
		return false
	}
	switch m.typ {
	case 'C': // CommandComplete: the command tag
		tag, _, ok := cstring(m.body)
		if !ok || tag != "COMMIT" {
			return false
		}
		c.mu.Lock()
		lose := len(c.trips) > 0 && c.trips[0].lose
		c.mu.Unlock()
		if lose {
			c.ctl.ackLost()
			return true
		}
	case 'Z': // ReadyForQuery: a round trip is over
		if !st.ready {
			st.ready = true
			return false
		}
		c.mu.Lock()
		var trip roundTrip
		if len(c.trips) > 0 {
			trip = c.trips[0]
			c.trips = c.trips[1:]
		}
		c.mu.Unlock()
		if trip.lose {
			// Marked lost, yet no COMMIT was acknowledged: the server
			// rolled back or refused, so nothing was committed whose
			// acknowledgement could be lost. A forced loss waits for the
			// next commit.
			c.ctl.lossUnused(trip.forced)
		}
	}
	return false
}

// closeAndDrain closes the stub (toxiproxy then closes the socket this
// direction writes to) and reads what is still coming until the link ends,
// so the goroutines feeding it are not left blocked.
func closeAndDrain(stub *toxics.ToxicStub) {
	stub.Close()
	for c := range stub.Input {
		_ = c
	}
}
