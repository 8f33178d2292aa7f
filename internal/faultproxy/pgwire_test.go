package faultproxy

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestIsCommit(t *testing.T) {
	for _, sql := range []string{
		"commit", "COMMIT", " Commit ;", "end", "END;", "commit work", "COMMIT TRANSACTION",
		"end transaction", "commit and no chain", "\n\tcommit\n",
	} {
		require.True(t, isCommit(sql), sql)
	}
	for _, sql := range []string{
		"", "rollback", "commit prepared 'x'", "commit and chain", "select 'commit'",
		"committed", "begin; commit", "end if", "insert into t values (1)",
	} {
		require.False(t, isCommit(sql), sql)
	}
}

// msg builds a typed protocol message.
func msg(typ byte, body ...[]byte) []byte {
	var b []byte
	for _, part := range body {
		b = append(b, part...)
	}
	out := []byte{typ, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(out[1:], uint32(4+len(b)))
	return append(out, b...)
}

func cstr(s string) []byte { return append([]byte(s), 0) }

func startup() []byte {
	body := binary.BigEndian.AppendUint32(nil, 196608)
	body = append(body, cstr("user")...)
	body = append(body, cstr("postgres")...)
	body = append(body, 0)
	return append(binary.BigEndian.AppendUint32(nil, uint32(4+len(body))), body...)
}

func sslRequest() []byte {
	b := binary.BigEndian.AppendUint32(nil, 8)
	return binary.BigEndian.AppendUint32(b, codeSSLRequest)
}

// feedFrontend runs the frontend's parse over stream in chunks of size n
// (every size from 1 up, so messages straddle chunks in every way) and
// returns the round trips it recorded.
func feedFrontend(t *testing.T, stream []byte, n int, ctl *controller) []roundTrip {
	t.Helper()
	c := &conn{ctl: ctl, cut: make(chan struct{})}
	st := &frontendState{conn: c, framer: framer{untyped: true}, stmts: map[string]bool{}, portals: map[string]bool{}}
	var passed []byte
	for i := 0; i < len(stream); i += n {
		out, cut := st.framer.feed(stream[i:min(i+n, len(stream))], st.handle)
		require.False(t, cut)
		passed = append(passed, out...)
	}
	require.Equal(t, stream, passed, "the framer hands on every byte, in order")
	return c.trips
}

func TestFrontendFindsCommits(t *testing.T) {
	long := make([]byte, 3*prefixLimit)
	for i := range long {
		long[i] = 'x'
	}
	var stream []byte
	stream = append(stream, sslRequest()...)
	stream = append(stream, startup()...)
	stream = append(stream, msg('Q', cstr("begin"))...)                                     // trip 0
	stream = append(stream, msg('Q', cstr("insert into t values ('"+string(long)+"')"))...) // trip 1: long, streamed
	stream = append(stream, msg('Q', cstr("commit"))...)                                    // trip 2: simple COMMIT
	// Extended protocol: a named statement prepared once, executed later.
	stream = append(stream, msg('P', cstr("s1"), cstr("  End ;"), []byte{0, 0})...)
	stream = append(stream, msg('S')...) // trip 3: the Prepare
	stream = append(stream, msg('B', cstr(""), cstr("s1"), []byte{0, 0, 0, 0, 0, 0})...)
	stream = append(stream, msg('E', cstr(""), []byte{0, 0, 0, 0})...)
	stream = append(stream, msg('S')...) // trip 4: executes END
	// The unnamed statement, parsed and executed in one round trip.
	stream = append(stream, msg('P', cstr(""), cstr("COMMIT"), []byte{0, 0})...)
	stream = append(stream, msg('B', cstr("p"), cstr(""), []byte{0, 0, 0, 0, 0, 0})...)
	stream = append(stream, msg('D', []byte{'P'}, cstr("p"))...)
	stream = append(stream, msg('E', cstr("p"), []byte{0, 0, 0, 0})...)
	stream = append(stream, msg('S')...) // trip 5: COMMIT
	// A closed statement is no longer a COMMIT; a Parse alone executes nothing.
	stream = append(stream, msg('C', []byte{'S'}, cstr("s1"))...)
	stream = append(stream, msg('P', cstr("s2"), cstr("commit"), []byte{0, 0})...)
	stream = append(stream, msg('B', cstr(""), cstr("s1"), []byte{0, 0, 0, 0, 0, 0})...)
	stream = append(stream, msg('E', cstr(""), []byte{0, 0, 0, 0})...)
	stream = append(stream, msg('S')...)                              // trip 6: nothing
	stream = append(stream, msg('Q', cstr("select 1"))...)            // trip 7
	stream = append(stream, msg('Q', cstr("commit prepared 'x'"))...) // trip 8
	wantCommit := []bool{false, false, true, false, true, true, false, false, false}

	for n := 1; n <= len(stream); n++ {
		ctl := newController()
		trips := feedFrontend(t, stream, n, ctl)
		require.Len(t, trips, len(wantCommit), "chunk size %d", n)
		for i, trip := range trips {
			require.Equal(t, wantCommit[i], trip.commit, "chunk size %d, trip %d", n, i)
			require.False(t, trip.lose, "no loss asked for")
		}
		require.EqualValues(t, 3, ctl.seen)
	}
}

func TestFrontendForcedLossMarksTheCommitTrip(t *testing.T) {
	ctl := newController()
	ctl.forced = 1
	stream := append(startup(), msg('Q', cstr("select 1"))...)
	stream = append(stream, msg('Q', cstr("commit"))...)
	stream = append(stream, msg('Q', cstr("commit"))...)
	trips := feedFrontend(t, stream, 3, ctl)
	require.Equal(t, []roundTrip{{}, {commit: true, lose: true, forced: true}, {commit: true}}, trips)
	require.Zero(t, ctl.forced)
}

// TestBackendCutsAtTheCommitAck feeds a server's answers in every chunk
// size and checks the backend hands on exactly the bytes before the
// CommandComplete "COMMIT" of the round trip marked lost, and nothing of it.
func TestBackendCutsAtTheCommitAck(t *testing.T) {
	ready := msg('Z', []byte{'I'})
	var stream []byte
	stream = append(stream, 'N') // the answer to SSLRequest
	stream = append(stream, msg('R', []byte{0, 0, 0, 0})...)
	stream = append(stream, msg('S', cstr("server_version"), cstr("15"))...)
	stream = append(stream, ready...)                                 // startup done
	stream = append(stream, msg('C', cstr("BEGIN"))...)               // trip 0
	stream = append(stream, msg('Z', []byte{'T'})...)                 //
	stream = append(stream, msg('C', cstr("ROLLBACK"))...)            // trip 1: commit of a failed tx
	stream = append(stream, ready...)                                 //
	stream = append(stream, msg('D', make([]byte, 2*prefixLimit))...) // trip 2: a long row first
	stream = append(stream, msg('C', cstr("COMMIT"))...)              //  then the ack: cut here
	before := len(stream) - len(msg('C', cstr("COMMIT")))
	stream = append(stream, ready...)

	for n := 1; n <= len(stream); n++ {
		ctl := newController()
		c := &conn{ctl: ctl, cut: make(chan struct{})}
		c.trips = []roundTrip{{}, {commit: true, lose: true, forced: true}, {commit: true, lose: true}}
		st := &backendState{conn: c, framer: framer{singles: 1}}
		var passed []byte
		cut := false
		for i := 0; i < len(stream) && !cut; i += n {
			var out []byte
			out, cut = st.framer.feed(stream[i:min(i+n, len(stream))], st.handle)
			passed = append(passed, out...)
		}
		require.True(t, cut, "chunk size %d", n)
		require.Equal(t, stream[:before], passed, "chunk size %d", n)
		require.EqualValues(t, 1, ctl.lost)
		require.Equal(t, 1, ctl.forced, "the forced loss of the rolled-back commit is owed to the next")
	}
}
