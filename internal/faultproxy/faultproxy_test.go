package faultproxy_test

import (
	"context"
	"net"
	"net/url"
	"strconv"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/dbtest"
	"github.com/payment-outbox/payment-outbox/internal/faultproxy"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// setup makes a test database with a table t, a proxy in front of its
// server, and returns the proxy, a URL through it, and a pool straight to
// the server for checking what was really committed.
func setup(t *testing.T) (*faultproxy.Proxy, string, *pgxpool.Pool) {
	t.Helper()
	direct := dbtest.Pool(t)
	_, err := direct.Exec(t.Context(), "CREATE TABLE t (id int PRIMARY KEY)")
	require.NoError(t, err)

	cfg := direct.Config().ConnConfig
	u, err := url.Parse(direct.Config().ConnString())
	require.NoError(t, err, "dbtest hands out URLs")
	p, err := faultproxy.Start(net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	require.NoError(t, err)
	t.Cleanup(p.Close)
	u.Host = p.Addr()
	q := u.Query()
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	return p, u.String(), direct
}

func connect(t *testing.T, dbURL string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func count(t *testing.T, pool *pgxpool.Pool, id int) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT count(*) FROM t WHERE id = $1", id).Scan(&n))
	return n
}

// insertAndCommit inserts id in a transaction through conn and returns
// Commit's error.
func insertAndCommit(t *testing.T, conn *pgx.Conn, id int) error {
	t.Helper()
	ctx := t.Context()
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "INSERT INTO t (id) VALUES ($1)", id)
	require.NoError(t, err)
	return tx.Commit(ctx)
}

func TestLostCommitAck(t *testing.T) {
	p, dbURL, direct := setup(t)

	p.LoseNextCommitAcks(1)
	err := insertAndCommit(t, connect(t, dbURL), 1)
	require.Error(t, err, "the client never hears that its COMMIT committed")
	require.NotErrorIs(t, err, pgx.ErrTxCommitRollback)
	require.Equal(t, 1, count(t, direct, 1), "yet the server committed it")
	require.Equal(t, faultproxy.Stats{CommitsSeen: 1, AcksLost: 1}, p.Stats())

	// The fault is spent: commits work again, on a new connection.
	require.NoError(t, insertAndCommit(t, connect(t, dbURL), 2))
	require.Equal(t, 1, count(t, direct, 2))
	require.Equal(t, faultproxy.Stats{CommitsSeen: 2, AcksLost: 1}, p.Stats())

	// At rate 1 every acknowledgement is lost; at 0, none.
	p.SetCommitLossRate(1)
	require.Error(t, insertAndCommit(t, connect(t, dbURL), 3))
	require.Equal(t, 1, count(t, direct, 3))
	p.SetCommitLossRate(0)
	conn := connect(t, dbURL)
	for id := 4; id < 10; id++ {
		require.NoError(t, insertAndCommit(t, conn, id))
	}
	require.Equal(t, faultproxy.Stats{CommitsSeen: 9, AcksLost: 2}, p.Stats())
}

// TestLostCommitAckExtendedProtocol commits with Parse/Bind/Execute, the
// unnamed statement and a prepared one, in other spellings of COMMIT.
func TestLostCommitAckExtendedProtocol(t *testing.T) {
	p, dbURL, direct := setup(t)
	ctx := t.Context()

	conn := connect(t, dbURL)
	_, err := conn.Exec(ctx, "BEGIN")
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "INSERT INTO t (id) VALUES ($1)", 1)
	require.NoError(t, err)
	p.LoseNextCommitAcks(1)
	err = conn.PgConn().ExecParams(ctx, " End ;", nil, nil, nil, nil).Read().Err
	require.Error(t, err)
	require.Equal(t, 1, count(t, direct, 1))

	conn = connect(t, dbURL)
	_, err = conn.PgConn().Prepare(ctx, "finish", "COMMIT WORK", nil)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "BEGIN")
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "INSERT INTO t (id) VALUES ($1)", 2)
	require.NoError(t, err)
	p.LoseNextCommitAcks(1)
	err = conn.PgConn().ExecPrepared(ctx, "finish", nil, nil, nil).Read().Err
	require.Error(t, err)
	require.Equal(t, 1, count(t, direct, 2))
	require.Equal(t, faultproxy.Stats{CommitsSeen: 2, AcksLost: 2}, p.Stats())
}

// TestForcedLossWaitsForACommitThatCommits: a COMMIT of a failed
// transaction rolls back, so its answer gets through and the forced loss
// goes to the next COMMIT that commits.
func TestForcedLossWaitsForACommitThatCommits(t *testing.T) {
	p, dbURL, direct := setup(t)
	ctx := t.Context()
	conn := connect(t, dbURL)

	p.LoseNextCommitAcks(1)
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "INSERT INTO t (id) VALUES (1/0)")
	require.Error(t, err)
	require.ErrorIs(t, tx.Commit(ctx), pgx.ErrTxCommitRollback)

	require.Error(t, insertAndCommit(t, conn, 1))
	require.Equal(t, 1, count(t, direct, 1))
	require.Equal(t, faultproxy.Stats{CommitsSeen: 2, AcksLost: 1}, p.Stats())
}

// TestLossHitsOnlyItsConnection: with many connections open at once, the
// loss cuts the connection whose COMMIT it was decided for, no other.
func TestLossHitsOnlyItsConnection(t *testing.T) {
	p, dbURL, direct := setup(t)
	ctx := t.Context()

	const n = 12
	conns := make([]*pgx.Conn, n)
	txs := make([]pgx.Tx, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			conn, err := pgx.Connect(ctx, dbURL)
			if err != nil {
				t.Error(err)
				return
			}
			conns[i] = conn
		})
	}
	wg.Wait()
	for i, conn := range conns {
		require.NotNil(t, conn)
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
		tx, err := conn.Begin(ctx)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, "INSERT INTO t (id) VALUES ($1)", i)
		require.NoError(t, err)
		txs[i] = tx
	}

	const victim = 7
	p.LoseNextCommitAcks(1)
	require.Error(t, txs[victim].Commit(ctx))
	for i, tx := range txs {
		if i != victim {
			require.NoError(t, tx.Commit(ctx), "connection %d", i)
			require.NoError(t, conns[i].Ping(ctx), "connection %d is still up", i)
		}
	}
	var rows int
	require.NoError(t, direct.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&rows))
	require.Equal(t, n, rows, "every transaction committed")
}

func TestCutConnections(t *testing.T) {
	p, dbURL, direct := setup(t)
	ctx := t.Context()

	a, b := connect(t, dbURL), connect(t, dbURL)
	tx, err := a.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "INSERT INTO t (id) VALUES (1)")
	require.NoError(t, err)

	require.Equal(t, 2, p.CutConnections())
	require.Error(t, tx.Commit(ctx), "cut before its COMMIT got there")
	require.Error(t, b.Ping(ctx))
	require.Equal(t, 0, count(t, direct, 1), "nothing committed")

	// The proxy still accepts connections.
	require.NoError(t, insertAndCommit(t, connect(t, dbURL), 2))
	require.EqualValues(t, 2, p.Stats().ConnectionsCut)
}

func TestClose(t *testing.T) {
	p, dbURL, _ := setup(t)
	conn := connect(t, dbURL)
	p.Close()
	require.Error(t, conn.Ping(t.Context()))
	_, err := pgx.Connect(t.Context(), dbURL)
	require.Error(t, err, "nothing listens any more")
}
