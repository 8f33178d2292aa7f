package chaos

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/payment-outbox/payment-outbox/internal/faultproxy"
	"github.com/payment-outbox/payment-outbox/internal/systest"
)

// database is one Postgres server of the run and the fault proxy every api
// and relay connection to it goes through.
type database struct {
	name  string
	pg    *systest.LocalPostgres // nil for a server of cfg.DatabaseURL
	addr  string                 // the server's own host:port
	proxy *faultproxy.Proxy
}

// startDatabases starts the cluster (and with cfg.Failover its synchronous
// standby), or takes cfg.DatabaseURL's servers, and puts a fault proxy in
// front of each. It sets s.directURL, for the suite's own reads and setup,
// which no fault touches, and s.dbURL, through the proxies, for the api
// and the relays; with two servers both are multi-host URLs that connect to
// whichever takes writes.
func (s *system) startDatabases(ctx context.Context, root string, logf func(string, ...any)) error {
	cfg := s.cfg
	if cfg.DatabaseURL != "" {
		hosts, err := urlHosts(cfg.DatabaseURL)
		if err != nil {
			return err
		}
		for i, h := range hosts {
			s.dbs = append(s.dbs, &database{name: "server" + strconv.Itoa(i), addr: h})
		}
		s.directURL = cfg.DatabaseURL
	} else {
		if !systest.LocalPostgresAvailable(root) {
			return fmt.Errorf("no DatabaseURL and no PostgreSQL server binaries for a local cluster")
		}
		port, err := freePort()
		if err != nil {
			return err
		}
		pg, err := systest.StartLocalPostgres(ctx, root, filepath.Join(s.workDir, "pg"), port)
		if err != nil {
			return err
		}
		s.dbs = append(s.dbs, &database{name: "primary", pg: pg, addr: pg.Addr()})
		// The cluster keeps fsync off for speed, but never acknowledges a
		// commit before it is in the WAL: a lost write would be the
		// harness's, not a bug to find, and a synchronous standby means
		// nothing with asynchronous commits.
		if err := setSynchronousCommit(ctx, pg.URL); err != nil {
			return err
		}
		logf("postgres: local cluster on port %d", port)
		if cfg.Failover {
			port, err := freePort()
			if err != nil {
				return err
			}
			standby, err := pg.StartStandby(ctx, filepath.Join(s.workDir, "pg-standby"), port)
			if err != nil {
				return err
			}
			s.dbs = append(s.dbs, &database{name: "standby", pg: standby, addr: standby.Addr()})
			s.standby = 1
			logf("postgres: synchronous standby on port %d", port)
		}
		addrs := make([]string, len(s.dbs))
		for i, db := range s.dbs {
			addrs[i] = db.addr
		}
		if s.directURL, err = withHosts(pg.URL, addrs); err != nil {
			return err
		}
	}

	proxied := make([]string, len(s.dbs))
	for i, db := range s.dbs {
		p, err := faultproxy.Start(db.addr)
		if err != nil {
			return err
		}
		db.proxy = p
		proxied[i] = p.Addr()
	}
	var err error
	if s.dbURL, err = withHosts(s.directURL, proxied); err != nil {
		return err
	}
	return nil
}

// setSynchronousCommit turns synchronous_commit on for the whole cluster,
// for good (ALTER SYSTEM outlives restarts).
func setSynchronousCommit(ctx context.Context, dbURL string) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("error connecting to set synchronous_commit: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "ALTER SYSTEM SET synchronous_commit = 'on'"); err != nil {
		return fmt.Errorf("error setting synchronous_commit: %w", err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return fmt.Errorf("error reloading the configuration: %w", err)
	}
	return nil
}

// primaryDB is the server that takes writes now.
func (s *system) primaryDB() *database {
	return s.dbs[s.primary]
}

// setCommitLoss sets the chance of a lost COMMIT acknowledgement on every
// proxy.
func (s *system) setCommitLoss(rate float64) {
	for _, db := range s.dbs {
		db.proxy.SetCommitLossRate(rate)
	}
}

// proxyStats adds up what the proxies saw.
func (s *system) proxyStats() faultproxy.Stats {
	var sum faultproxy.Stats
	for _, db := range s.dbs {
		st := db.proxy.Stats()
		sum.CommitsSeen += st.CommitsSeen
		sum.AcksLost += st.AcksLost
		sum.ConnectionsCut += st.ConnectionsCut
	}
	return sum
}

// restartPostgres stops the primary (fast shutdown: every connection is
// cut, open transactions roll back) and starts it again.
func (s *system) restartPostgres(ctx context.Context) error {
	db := s.primaryDB()
	if err := db.pg.Stop(ctx); err != nil {
		return err
	}
	time.Sleep(time.Second)
	// Started whatever happens to the load's context: a cluster left down
	// would fail the drain for a reason that is not the system's.
	return db.pg.Start(context.WithoutCancel(ctx))
}

// failover replaces the primary with its synchronous standby under load.
// The old primary is fenced first, then stopped, then the standby
// promoted: never two servers taking writes at once (a client still
// connected to the old one would write where nobody reads again). Closing
// its proxy cuts every api and relay connection to it and refuses new
// ones; the fast shutdown then hands the standby the WAL the primary still
// had (its walsender sends everything before exiting), and as every
// acknowledged commit was already on the standby, nothing a client was
// told is lost. Clients see errors until the promotion, then the
// multi-host URL's target_session_attrs=read-write finds the new primary.
func (s *system) failover(ctx context.Context, logf func(string, ...any)) error {
	if s.standby < 0 {
		return fmt.Errorf("no standby to fail over to")
	}
	old, next := s.primaryDB(), s.dbs[s.standby]
	start := time.Now()
	old.proxy.Close()
	if err := old.pg.Stop(ctx); err != nil {
		return err
	}
	if err := next.pg.Promote(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	s.primary, s.standby = s.standby, -1
	logf("failover: %s fenced and stopped, %s promoted in %s", old.name, next.name, time.Since(start).Round(time.Millisecond))
	return nil
}

// closeDatabases stops the proxies and the local servers.
func (s *system) closeDatabases() {
	for _, db := range s.dbs {
		if db.proxy != nil {
			db.proxy.Close()
		}
		if db.pg != nil {
			_ = db.pg.Stop(context.Background())
		}
	}
}

func freePort() (int, error) {
	addr, err := systest.FreeAddr()
	if err != nil {
		return 0, err
	}
	_, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("error reading free address %s: %w", addr, err)
	}
	return strconv.Atoi(portStr)
}

// urlHosts returns the host:port of every server a postgres:// URL names
// (5432 where it names no port).
func urlHosts(dbURL string) ([]string, error) {
	u, err := url.Parse(dbURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return nil, fmt.Errorf("the database URL must be a postgres:// URL with a host (the fault proxies go in front of its hosts)")
	}
	var hosts []string
	for _, h := range strings.Split(u.Host, ",") {
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(h, "5432")
		}
		hosts = append(hosts, h)
	}
	return hosts, nil
}

// withHosts returns dbURL naming hosts instead of its own. With more than
// one, the client is to connect to the first that takes writes.
func withHosts(dbURL string, hosts []string) (string, error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", fmt.Errorf("error parsing database URL: %w", err)
	}
	u.Host = strings.Join(hosts, ",")
	q := u.Query()
	if len(hosts) > 1 && q.Get("target_session_attrs") == "" {
		q.Set("target_session_attrs", "read-write")
	}
	if q.Get("sslmode") == "" {
		// The proxies read the wire protocol, which TLS would hide.
		q.Set("sslmode", "disable")
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}
