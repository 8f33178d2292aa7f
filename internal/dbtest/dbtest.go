// Package dbtest gives each test a real Postgres database of its own, fully
// migrated (River's migrations and the project's), in a few milliseconds.
//
// The server comes from DATABASE_URL when it is set: an admin-capable URL
// (the user may CREATE and DROP databases), for example a throwaway local
// cluster:
//
//	DATABASE_URL=$(scripts/localpg start /tmp/payment-outbox-pg) go test ./...
//
// Otherwise one Postgres container per test binary is started with
// testcontainers-go (image DBTEST_IMAGE, default postgres:15-alpine) and
// shared by that binary's tests. A package that uses dbtest should have
//
//	func TestMain(m *testing.M) { dbtest.Main(m) }
//
// so the container is terminated when its tests end.
//
// Migrations run once per server into a template database whose name carries
// a hash of the migrations, so a schema change makes a new template rather
// than reusing a stale one. Every URL or Pool call then clones that template
// with CREATE DATABASE ... TEMPLATE, which is much faster than migrating, and
// drops the clone when the test ends. Tests therefore never see each other's
// rows and may all run with t.Parallel().
//
// Import dbtest from _test.go files only.
package dbtest

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/payment-outbox/payment-outbox/db"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

const (
	// envDatabaseURL names the admin URL of an existing server to use.
	envDatabaseURL = "DATABASE_URL"
	// envImage names the image to run when DATABASE_URL is not set.
	envImage     = "DBTEST_IMAGE"
	defaultImage = "postgres:15-alpine"

	templatePrefix = "payment_outbox_tmpl_"
	testDBPrefix   = "payment_outbox_test_"

	// templateFormat is part of the template's hash. Bump it when something
	// that shapes the template changes without changing a migration file
	// (say, store.Migrate's bookkeeping), so old templates are not reused.
	templateFormat = 1

	// templateLockKey serialises template creation across test binaries: `go
	// test ./...` runs packages in parallel, all against one server. The
	// value is arbitrary but fixed, and differs from store's migration lock.
	templateLockKey = 7_264_118_905_113

	// poolMaxConns keeps a test's pool small: many tests run at once against
	// one server, whose max_connections is shared by them all. A test that
	// needs a bigger pool can build its own from URL.
	poolMaxConns = 10
	// adminMaxConns bounds the connections used to create and drop databases.
	adminMaxConns = 4

	serverStartTimeout = 3 * time.Minute
	templateTimeout    = 2 * time.Minute
	dropTimeout        = 30 * time.Second
)

// server is the Postgres server the tests of this binary share.
type server struct {
	adminURL  string
	admin     *pgxpool.Pool
	container *tcpostgres.PostgresContainer // nil when DATABASE_URL was given
}

// The server and its template are per test binary, which is per process, so
// they live in package state behind sync.Once; there is no other owner that
// could hold them across the binary's tests.
var (
	serverOnce sync.Once
	theServer  *server
	serverErr  error

	templateOnce sync.Once
	templateName string
	templateErr  error
)

// Main runs the tests of a package and then releases the shared server (it
// terminates the container, if dbtest started one) before exiting with the
// tests' exit code. Call it from TestMain:
//
//	func TestMain(m *testing.M) { dbtest.Main(m) }
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is Main without the exit: it runs the tests, releases the shared
// server and returns the tests' exit code, for a TestMain with checks of its
// own to make once every test has run.
func Run(m *testing.M) int {
	code := m.Run()
	if err := shutdown(); err != nil {
		fmt.Fprintf(os.Stderr, "dbtest: %v\n", err)
	}
	return code
}

// URL creates a fresh, fully migrated database for this test and returns its
// connection URL, for code that opens its own connections (a binary started
// by the test, a pool with other settings). The database is dropped when the
// test ends, connections to it included.
func URL(t testing.TB) string {
	t.Helper()
	s := requireServer(t)
	tmpl := requireTemplate(t, s)

	name := testDBPrefix + randomHex(t, 8)
	_, err := s.admin.Exec(t.Context(), "CREATE DATABASE "+ident(name)+" TEMPLATE "+ident(tmpl))
	require.NoError(t, err, "error creating test database %s from template %s", name, tmpl)

	t.Cleanup(func() {
		// The test's context is already canceled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), dropTimeout)
		defer cancel()
		// FORCE: a binary the test started, or a pool it forgot to close,
		// must not make the drop fail and leak the database.
		if _, err := s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)"); err != nil {
			t.Errorf("error dropping test database %s: %v", name, err)
		}
	})

	dbURL, err := databaseURL(s.adminURL, name)
	require.NoError(t, err)
	return dbURL
}

// Pool creates a fresh, fully migrated database for this test and returns a
// small pool connected to it. The pool is closed and the database dropped
// when the test ends.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	dbURL := URL(t)

	cfg, err := pgxpool.ParseConfig(dbURL)
	require.NoError(t, err, "error parsing test database URL")
	cfg.MaxConns = poolMaxConns
	cfg.MinConns = 0

	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err, "error creating pool for test database")
	// Registered after URL's drop, so it runs first: the pool closes, then
	// the database goes.
	t.Cleanup(pool.Close)
	require.NoError(t, pool.Ping(t.Context()), "error connecting to test database")
	return pool
}

// ServerURL returns the admin URL of the server the test databases live on,
// for tests that need the server itself (for instance to create an empty,
// unmigrated database). Databases created through it are the test's to drop.
func ServerURL(t testing.TB) string {
	t.Helper()
	return requireServer(t).adminURL
}

func requireServer(t testing.TB) *server {
	t.Helper()
	serverOnce.Do(func() { theServer, serverErr = startServer() })
	require.NoError(t, serverErr, "dbtest: no Postgres server for tests")
	return theServer
}

func requireTemplate(t testing.TB, s *server) string {
	t.Helper()
	templateOnce.Do(func() {
		// Not the test's context: the template outlives the first test,
		// and a canceled first test must not fail every later one.
		ctx, cancel := context.WithTimeout(context.Background(), templateTimeout)
		defer cancel()
		templateName, templateErr = ensureTemplate(ctx, s)
	})
	require.NoError(t, templateErr, "dbtest: error preparing the migrated template database")
	return templateName
}

// startServer picks the server: DATABASE_URL, else a container. It runs once
// per test binary; its error is what every test then reports.
func startServer() (*server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), serverStartTimeout)
	defer cancel()

	if adminURL := os.Getenv(envDatabaseURL); adminURL != "" {
		admin, err := openAdmin(ctx, adminURL)
		if err != nil {
			return nil, fmt.Errorf("error connecting to %s=%s: %w", envDatabaseURL, redact(adminURL), err)
		}
		return &server{adminURL: adminURL, admin: admin}, nil
	}

	image := cmp.Or(os.Getenv(envImage), defaultImage)
	s, err := startContainer(ctx, image)
	if err != nil {
		// Never a skip: a test that silently does not run against Postgres
		// is a test that silently passes.
		return nil, fmt.Errorf("%s is not set, and starting a Postgres container from image %q failed: %w\n\n"+
			"Set %s to the URL of a Postgres server on which the user may create databases, e.g.\n"+
			"\t%s=$(scripts/localpg start /tmp/payment-outbox-pg) go test ./...\n"+
			"or make Docker able to run %q (%s picks another image)",
			envDatabaseURL, image, err, envDatabaseURL, envDatabaseURL, image, envImage)
	}
	return s, nil
}

func startContainer(ctx context.Context, image string) (s *server, err error) {
	// testcontainers has panicked rather than returned an error on some
	// Docker setups; that must become the clear failure, not a crash of the
	// whole test binary.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("testcontainers panicked: %v", r)
		}
	}()

	ctr, err := tcpostgres.Run(ctx, image,
		tcpostgres.BasicWaitStrategies(),
		// The module already sets fsync=off; the rest matches
		// scripts/localpg: durability is worthless in a throwaway server,
		// and parallel tests need connections.
		testcontainers.WithCmdArgs(
			"-c", "synchronous_commit=off",
			"-c", "full_page_writes=off",
			"-c", "max_connections=300",
		),
	)
	if err != nil {
		if ctr != nil {
			_ = testcontainers.TerminateContainer(ctr)
		}
		return nil, fmt.Errorf("error running container: %w", err)
	}

	adminURL, err := ctr.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		_ = testcontainers.TerminateContainer(ctr)
		return nil, fmt.Errorf("error getting container connection string: %w", err)
	}
	admin, err := openAdmin(ctx, adminURL)
	if err != nil {
		_ = testcontainers.TerminateContainer(ctr)
		return nil, fmt.Errorf("error connecting to container: %w", err)
	}
	return &server{adminURL: adminURL, admin: admin, container: ctr}, nil
}

func openAdmin(ctx context.Context, adminURL string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(adminURL)
	if err != nil {
		return nil, fmt.Errorf("error parsing URL: %w", err)
	}
	cfg.MaxConns = adminMaxConns
	cfg.MinConns = 0
	admin, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("error creating pool: %w", err)
	}
	if err := admin.Ping(ctx); err != nil {
		admin.Close()
		return nil, fmt.Errorf("error pinging server: %w", err)
	}
	return admin, nil
}

// shutdown releases the shared server, if this binary ever started one.
func shutdown() error {
	if theServer == nil {
		return nil
	}
	theServer.admin.Close()
	if theServer.container == nil {
		return nil
	}
	if err := testcontainers.TerminateContainer(theServer.container); err != nil {
		return fmt.Errorf("error terminating Postgres container: %w", err)
	}
	return nil
}

// ensureTemplate returns the name of the migrated template database for the
// current migrations, creating it if no test binary has yet.
func ensureTemplate(ctx context.Context, s *server) (string, error) {
	name, err := templateNameForMigrations()
	if err != nil {
		return "", err
	}

	conn, err := s.admin.Acquire(ctx)
	if err != nil {
		return "", fmt.Errorf("error acquiring admin connection: %w", err)
	}
	defer conn.Release()

	// A session lock, so it is released even if this process dies midway.
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(templateLockKey)); err != nil {
		return "", fmt.Errorf("error taking template lock: %w", err)
	}
	defer func() {
		// A fresh context: ctx may be done, and the lock must not outlive
		// this call on a pooled connection.
		_, _ = conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", int64(templateLockKey))
	}()

	var isTemplate bool
	err = conn.QueryRow(ctx, "SELECT datistemplate FROM pg_database WHERE datname = $1", name).Scan(&isTemplate)
	switch {
	case err == nil && isTemplate:
		return name, nil
	case err == nil:
		// The template flag is set last, so a database without it is one a
		// process died while migrating: start over.
		if _, err := conn.Exec(ctx, "DROP DATABASE "+ident(name)+" WITH (FORCE)"); err != nil {
			return "", fmt.Errorf("error dropping unfinished template %s: %w", name, err)
		}
	case errors.Is(err, pgx.ErrNoRows):
	default:
		return "", fmt.Errorf("error looking up template %s: %w", name, err)
	}

	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident(name)); err != nil {
		return "", fmt.Errorf("error creating template %s: %w", name, err)
	}
	if err := migrateTemplate(ctx, s.adminURL, name); err != nil {
		// Best effort; left behind, it would be dropped by the next run.
		_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)")
		return "", err
	}
	// No connections allowed: CREATE DATABASE ... TEMPLATE fails while
	// anyone is connected to the template, so nobody may be.
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+ident(name)+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"); err != nil {
		return "", fmt.Errorf("error marking %s as a template: %w", name, err)
	}
	return name, nil
}

func migrateTemplate(ctx context.Context, adminURL, name string) error {
	dbURL, err := databaseURL(adminURL, name)
	if err != nil {
		return err
	}
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return fmt.Errorf("error parsing template URL: %w", err)
	}
	cfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("error connecting to template %s: %w", name, err)
	}
	// Closed before the caller marks the template: clones need it idle.
	defer pool.Close()
	if _, err := store.Migrate(ctx, pool); err != nil {
		return fmt.Errorf("error migrating template %s: %w", name, err)
	}
	return nil
}

// templateNameForMigrations names the template after everything that shapes
// its schema: River's migrations and the project's migration files.
func templateNameForMigrations() (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "format %d\n", templateFormat)

	// River's version enters as the SQL of the migrations it bundles, which
	// is what it puts in the template. Not as the module version from
	// debug.ReadBuildInfo: Go stamps dependencies into the test binaries of
	// main packages only, so that gave cmd/api's tests another template
	// than everyone else's. A nil pool is enough to list the migrations.
	migrator, err := rivermigrate.New(riverpgxv5.New(nil), nil)
	if err != nil {
		return "", fmt.Errorf("error creating River migrator: %w", err)
	}
	for _, m := range migrator.AllVersions() {
		fmt.Fprintf(h, "river migration %d\n%s\n", m.Version, m.SQLUp)
	}

	names, err := fs.Glob(db.Migrations, "migrations/*.sql")
	if err != nil {
		return "", fmt.Errorf("error listing migrations: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		sql, err := fs.ReadFile(db.Migrations, name)
		if err != nil {
			return "", fmt.Errorf("error reading migration %s: %w", name, err)
		}
		fmt.Fprintf(h, "migration %s\n%s\n", name, sql)
	}
	return templatePrefix + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// databaseURL returns adminURL pointed at database name instead.
func databaseURL(adminURL, name string) (string, error) {
	if strings.HasPrefix(adminURL, "postgres://") || strings.HasPrefix(adminURL, "postgresql://") {
		u, err := url.Parse(adminURL)
		if err != nil {
			return "", fmt.Errorf("error parsing database URL: %w", err)
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	// Keyword/value form ("host=... dbname=..."): a later keyword wins, and
	// our names need no quoting.
	return adminURL + " dbname=" + name, nil
}

// redact hides a password in adminURL for error messages.
func redact(adminURL string) string {
	if u, err := url.Parse(adminURL); err == nil && u.Scheme != "" {
		return u.Redacted()
	}
	return "(a keyword/value connection string)"
}

func ident(name string) string {
	return pgx.Identifier{name}.Sanitize()
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err, "error reading random bytes")
	return hex.EncodeToString(b)
}
