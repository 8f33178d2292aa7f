// Package outboxtest runs the payment outbox in Docker containers for tests:
// Postgres, the migrations, the api, one or more relays and the gateway
// simulator standing in for Toss, all on one private Docker network. It is
// public (not under internal/) so that services taking payments through the
// outbox can test against the real thing:
//
//	sys, err := outboxtest.Start(ctx, outboxtest.Options{})
//	if err != nil { ... }
//	defer sys.Terminate(context.Background())
//
//	// sys.APIURL:        POST /v1/payments, /v1/payments/{id}/confirm, ...
//	//                    with "Authorization: Bearer "+sys.APIKey
//	// sys.GatewaySimURL: POST /sim/v1/authorize plays the customer's checkout
//	//                    widget; GET /sim/v1/ledger is what the gateway charged
//
// # Images
//
// The api, relay and gatewaysim images are payment-outbox/NAME:src-HASH,
// where HASH is a hash of this module's source: Start builds them when the
// local Docker does not have them, from the module's source (this
// repository, a replace directive's directory, or the module cache) as
// `make images` does: each command compiled here by the go command, static,
// onto scratch. Nothing is pulled, and a changed source is never run from a
// stale image. OUTBOXTEST_IMAGE_TAG=TAG uses payment-outbox/NAME:TAG instead
// (`make images` tags :latest), which must exist. Postgres is
// OUTBOXTEST_POSTGRES_IMAGE if set, else payment-outbox/postgres:15 if the
// local Docker has it, else postgres:15-alpine if present or pullable, else
// payment-outbox/postgres:15 built from Debian packages by
// deploy/images/build-postgres-image (root and debootstrap).
//
// # What a test gets
//
// System.Client is the client package's client for the api; WaitPayment
// waits for an outcome; Sim drives the gateway simulator (authorize, fault
// injection, ledger); NewWebhookReceiver registers a webhook endpoint in the
// test process and hands over each event whose signature verifies.
//
// # Docker
//
// Start needs a Docker engine; Available tells whether one answers, for
// tests that skip without it. The URLs point at ports Docker publishes on
// the host; where testcontainers guesses the host wrong (a machine with a
// stale /.dockerenv makes it pick the default gateway), Start tries the
// loopback address too, and TESTCONTAINERS_HOST_OVERRIDE forces an address.
// Testcontainers' reaper (Ryuk) removes leftovers of a test binary that
// dies; where its image cannot be pulled, set TESTCONTAINERS_RYUK_DISABLED=true
// and rely on Terminate (see Main, which does that for a whole test binary).
package outboxtest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Image defaults and the environment variables that change them.
const (
	// DefaultImageTag is the tag `make images` gives its images beside the
	// commit's; OUTBOXTEST_IMAGE_TAG=latest runs those instead of building.
	DefaultImageTag = "latest"
	// LocalPostgresImage is the Postgres image deploy/images/build-postgres-image
	// builds; used when the local Docker has it.
	LocalPostgresImage = "payment-outbox/postgres:15"
	// PublicPostgresImage is the Postgres image used otherwise (pulled).
	PublicPostgresImage = "postgres:15-alpine"

	envImageTag      = "OUTBOXTEST_IMAGE_TAG"
	envPostgresImage = "OUTBOXTEST_POSTGRES_IMAGE"
	envHostOverride  = "TESTCONTAINERS_HOST_OVERRIDE"
)

// Other defaults.
const (
	// DefaultSecretKey is the gateway secret key the relays send and the
	// simulator accepts.
	DefaultSecretKey = "test_sk_outboxtest"
	// DefaultAPIKeyName names the API key Start creates.
	DefaultAPIKeyName = "outboxtest"
	// DefaultStartupTimeout bounds each container's start.
	DefaultStartupTimeout = 2 * time.Minute
	// DefaultRelayStopTimeout is how long Relay.Stop waits after SIGTERM
	// before Docker kills the relay: the relay's default
	// RELAY_SHUTDOWN_TIMEOUT (30s) plus its hard stop (10s) and slack.
	DefaultRelayStopTimeout = 45 * time.Second

	postgresPassword = "outboxtest"
	databaseName     = "payment_outbox"

	apiPort   = "8080/tcp"
	relayPort = "8081/tcp"
	simPort   = "8090/tcp"
	pgPort    = "5432/tcp"

	// labelSystem marks every container and the network of one System, so
	// leftovers of a killed test run can be found:
	//   docker ps -a --filter label=payment-outbox.outboxtest
	labelSystem = "payment-outbox.outboxtest"
)

// Options configure Start. The zero value starts one relay with the default
// images.
type Options struct {
	// Images. Empty: see the package documentation.
	PostgresImage   string
	APIImage        string
	RelayImage      string
	GatewaySimImage string

	// Relays is how many relay containers to start; 0 means 1. More can be
	// added later with System.AddRelay.
	Relays int

	// SecretKey is the gateway secret key. Default: DefaultSecretKey.
	SecretKey string
	// APIKeyName names the API key Start creates. Default: DefaultAPIKeyName.
	APIKeyName string

	// Extra environment per container, on top of (and overriding) what
	// Start sets: for example RelayEnv RELAY_BACKOFF_MAX or GatewaySimEnv
	// SIM_LATENCY. DATABASE_URL and the secret key are always Start's.
	APIEnv        map[string]string
	RelayEnv      map[string]string
	GatewaySimEnv map[string]string

	// StartupTimeout bounds each container's start. Default:
	// DefaultStartupTimeout.
	StartupTimeout time.Duration

	// Logger receives testcontainers' progress lines; tclog.TestLogger(t)
	// sends them to the test's log. Default: testcontainers' default logger.
	Logger tclog.Logger
}

// System is a running payment outbox. Its methods are safe for concurrent use.
type System struct {
	// APIURL is the api's base URL, reachable from the test.
	APIURL string
	// GatewaySimURL is the gateway simulator's base URL: the Toss API under
	// /v1, its control API (authorize, ledger, config, ...) under /sim/v1.
	GatewaySimURL string
	// APIKey is an API key for the api's /v1 calls, sent as
	// "Authorization: Bearer "+APIKey. Empty when the api image predates
	// API keys (it has no `api keys create`) and so needs none.
	APIKey string
	// DatabaseURL connects to the system's database from the test, for
	// tests that read rows directly.
	DatabaseURL string

	opts        Options
	network     *testcontainers.DockerNetwork
	host        string
	internalURL string // DATABASE_URL as the containers see it

	mu         sync.Mutex
	containers []namedContainer // everything to terminate, in start order
	relays     []*Relay
	relaySeq   int
}

type namedContainer struct {
	name string
	c    *testcontainers.DockerContainer
}

// Relay is one relay container of a System.
type Relay struct {
	// Name is the relay's network alias and log name: relay-1, relay-2, ...
	Name string

	sys *System
	c   *testcontainers.DockerContainer

	mu       sync.Mutex
	probeURL string
}

// Available returns nil when a Docker engine answers, and an error saying
// why not otherwise. Tests use it to skip, and only for that reason: a
// missing image is a failure, not a skip.
func Available(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("error creating Docker client: %w", err)
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("no Docker engine answers: %w", err)
	}
	return nil
}

// Start starts a System: Postgres, `api migrate`, `api keys create`, the
// gateway simulator, the relays and the api, and returns once every one of
// them answers. On error everything it started is removed again.
func Start(ctx context.Context, opts Options) (_ *System, err error) {
	opts, err = resolveOptions(ctx, opts)
	if err != nil {
		return nil, err
	}
	sys := &System{opts: opts}
	defer func() {
		if err != nil {
			// The caller's context may be what failed; cleanup gets its own.
			cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			err = errors.Join(err, sys.Terminate(cleanupCtx))
		}
	}()

	sys.network, err = network.New(ctx, network.WithLabels(map[string]string{labelSystem: "network"}))
	if err != nil {
		return nil, fmt.Errorf("error creating Docker network: %w", err)
	}

	if err := sys.startPostgres(ctx); err != nil {
		return nil, err
	}
	if out, err := sys.runOnce(ctx, "migrate", "migrate"); err != nil {
		return nil, fmt.Errorf("error running api migrate: %w\n%s", err, out)
	}
	if sys.APIKey, err = sys.createAPIKey(ctx); err != nil {
		return nil, err
	}

	sim, err := sys.run(ctx, "gatewaysim", opts.GatewaySimImage, simPort, merge(map[string]string{
		"SIM_ADDR":       ":8090",
		"SIM_SECRET_KEY": opts.SecretKey,
	}, opts.GatewaySimEnv, nil), wait.ForLog("gatewaysim listening"))
	if err != nil {
		return nil, err
	}
	if sys.GatewaySimURL, err = sys.url(ctx, sim, simPort); err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, sys.GatewaySimURL+"/healthz", opts.StartupTimeout); err != nil {
		return nil, fmt.Errorf("gatewaysim: %w", err)
	}

	for range opts.Relays {
		if _, err := sys.AddRelay(ctx); err != nil {
			return nil, err
		}
	}

	api, err := sys.run(ctx, "api", opts.APIImage, apiPort, merge(map[string]string{
		"API_ADDR":           ":8080",
		"DATABASE_MAX_CONNS": "10",
		// Webhook receivers in the test process are on a private address.
		"API_WEBHOOK_ALLOW_PRIVATE": "true",
	}, opts.APIEnv, map[string]string{"DATABASE_URL": sys.internalURL}), wait.ForLog("api: listening on"))
	if err != nil {
		return nil, err
	}
	if sys.APIURL, err = sys.url(ctx, api, apiPort); err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, sys.APIURL+"/readyz", opts.StartupTimeout); err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	return sys, nil
}

// AddRelay starts one more relay and returns once it is ready.
func (s *System) AddRelay(ctx context.Context) (*Relay, error) {
	s.mu.Lock()
	s.relaySeq++
	name := "relay-" + strconv.Itoa(s.relaySeq)
	s.mu.Unlock()

	c, err := s.run(ctx, name, s.opts.RelayImage, relayPort, merge(map[string]string{
		"TOSS_API_BASE_URL":         "http://gatewaysim:8090",
		"RELAY_ADDR":                ":8081",
		"RELAY_BACKOFF_INITIAL":     "100ms",
		"RELAY_BACKOFF_MAX":         "2s",
		"RELAY_FETCH_POLL_INTERVAL": "200ms",
		"DATABASE_MAX_CONNS":        "10",
		// The test's webhook receivers (NewWebhookReceiver) run on the
		// Docker host, a private address.
		"RELAY_WEBHOOK_ALLOW_PRIVATE": "true",
	}, s.opts.RelayEnv, map[string]string{
		"DATABASE_URL":    s.internalURL,
		"TOSS_SECRET_KEY": s.opts.SecretKey,
	}), wait.ForLog("relay: working the outbox"),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.ExtraHosts = append(hc.ExtraHosts, webhookHost+":host-gateway")
		}))
	if err != nil {
		return nil, err
	}
	r := &Relay{Name: name, sys: s, c: c}
	if err := r.waitReady(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.relays = append(s.relays, r)
	s.mu.Unlock()
	return r, nil
}

// Relays returns the relays, in the order they were added.
func (s *System) Relays() []*Relay {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.relays)
}

// Logs returns every container's output (stdout and stderr together) by
// name, for failure messages. A container whose log cannot be read gets the
// error instead.
func (s *System) Logs(ctx context.Context) map[string]string {
	s.mu.Lock()
	containers := slices.Clone(s.containers)
	s.mu.Unlock()
	logs := make(map[string]string, len(containers))
	for _, nc := range containers {
		out, err := containerLogs(ctx, nc.c)
		if err != nil {
			out = fmt.Sprintf("(error reading the log: %v)", err)
		}
		logs[nc.name] = out
	}
	return logs
}

// Terminate removes every container Start and AddRelay started, and the
// network. It is safe to call more than once and on a partly started System.
func (s *System) Terminate(ctx context.Context) error {
	s.mu.Lock()
	containers := s.containers
	s.containers = nil
	nw := s.network
	s.network = nil
	s.mu.Unlock()

	var errs []error
	// Reverse start order: the api and relays go before the database.
	for _, nc := range slices.Backward(containers) {
		// No grace: what the containers were doing is thrown away.
		if err := testcontainers.TerminateContainer(nc.c, testcontainers.StopContext(ctx), testcontainers.StopTimeout(0)); err != nil {
			errs = append(errs, fmt.Errorf("error terminating %s: %w", nc.name, err))
		}
	}
	if nw != nil {
		if err := nw.Remove(ctx); err != nil {
			errs = append(errs, fmt.Errorf("error removing network %s: %w", nw.Name, err))
		}
	}
	return errors.Join(errs...)
}

// ProbeURL is the base URL of the relay's /healthz and /readyz. Docker
// publishes the probe port anew on each start, so it changes when the relay
// is restarted.
func (r *Relay) ProbeURL() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.probeURL
}

// Stop sends the relay SIGTERM, as an orchestrator does, and waits for it to
// exit; past timeout (0: DefaultRelayStopTimeout) Docker kills it. It
// returns the relay's exit code: 0 when it shut down on its own.
func (r *Relay) Stop(ctx context.Context, timeout time.Duration) (int, error) {
	if timeout <= 0 {
		timeout = DefaultRelayStopTimeout
	}
	if err := r.c.Stop(ctx, &timeout); err != nil {
		return 0, fmt.Errorf("error stopping %s: %w", r.Name, err)
	}
	state, err := r.c.State(ctx)
	if err != nil {
		return 0, fmt.Errorf("error reading %s's state: %w", r.Name, err)
	}
	return state.ExitCode, nil
}

// Start starts a stopped relay again and waits until it is ready.
func (r *Relay) Start(ctx context.Context) error {
	if err := r.c.Start(ctx); err != nil {
		return fmt.Errorf("error starting %s: %w", r.Name, err)
	}
	return r.waitReady(ctx)
}

// Logs returns the relay's output so far, across restarts.
func (r *Relay) Logs(ctx context.Context) (string, error) {
	return containerLogs(ctx, r.c)
}

func (r *Relay) waitReady(ctx context.Context) error {
	u, err := r.sys.url(ctx, r.c, relayPort)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.probeURL = u
	r.mu.Unlock()
	if err := waitHTTP(ctx, u+"/readyz", r.sys.opts.StartupTimeout); err != nil {
		return fmt.Errorf("%s: %w", r.Name, err)
	}
	return nil
}

func resolveOptions(ctx context.Context, opts Options) (Options, error) {
	opts.SecretKey = cmp.Or(opts.SecretKey, DefaultSecretKey)
	opts.APIKeyName = cmp.Or(opts.APIKeyName, DefaultAPIKeyName)
	opts.StartupTimeout = cmp.Or(opts.StartupTimeout, DefaultStartupTimeout)
	opts.Relays = max(opts.Relays, 1)

	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return opts, fmt.Errorf("error creating Docker client: %w", err)
	}
	defer cli.Close()
	hasImage := func(image string) (bool, error) {
		_, err := cli.ImageInspect(ctx, image)
		if cerrdefs.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("error inspecting image %s: %w", image, err)
		}
		return true, nil
	}

	// Without a tag named, the images are the module's source as it is now
	// (sourceTag), built here when missing: a test needs only Docker.
	tag := os.Getenv(envImageTag)
	var src string
	if tag == "" && (opts.APIImage == "" || opts.RelayImage == "" || opts.GatewaySimImage == "") {
		if src, err = moduleSource(); err != nil {
			return opts, err
		}
		if tag, err = sourceTag(src); err != nil {
			return opts, err
		}
	}
	opts.APIImage = cmp.Or(opts.APIImage, "payment-outbox/api:"+tag)
	opts.RelayImage = cmp.Or(opts.RelayImage, "payment-outbox/relay:"+tag)
	opts.GatewaySimImage = cmp.Or(opts.GatewaySimImage, "payment-outbox/gatewaysim:"+tag)

	if err := resolvePostgres(ctx, &opts, hasImage, cli); err != nil {
		return opts, err
	}

	// This project's images exist only where they were built: pulling them
	// would fail later with a far less helpful registry error.
	for _, image := range []string{opts.PostgresImage, opts.APIImage, opts.RelayImage, opts.GatewaySimImage} {
		if !strings.HasPrefix(image, "payment-outbox/") {
			continue
		}
		ok, err := hasImage(image)
		if err != nil {
			return opts, err
		}
		if ok {
			continue
		}
		if src != "" && strings.HasSuffix(image, ":"+tag) && image != opts.PostgresImage {
			if err := buildOnce(ctx, cli, hasImage, src, tag, image); err != nil {
				return opts, err
			}
			continue
		}
		return opts, fmt.Errorf("image %s is not in the local Docker engine: build it with `make images` "+
			"(Postgres: `make postgres-image`) in the payment-outbox repository", image)
	}
	return opts, nil
}

// buildOnce builds the images of tag unless another test of this process
// did meanwhile.
func buildOnce(ctx context.Context, cli *testcontainers.DockerClient, hasImage func(string) (bool, error), src, tag, image string) error {
	buildMu.Lock()
	defer buildMu.Unlock()
	if ok, err := hasImage(image); err != nil || ok {
		return err
	}
	fmt.Fprintf(os.Stderr, "outboxtest: building the payment-outbox images %s from %s\n", tag, src)
	return buildImages(ctx, cli, src, tag)
}

// resolvePostgres picks the Postgres image: OUTBOXTEST_POSTGRES_IMAGE, else
// payment-outbox/postgres:15 if present, else postgres:15-alpine if present
// or pullable, else payment-outbox/postgres:15 built here from Debian's
// packages (deploy/images/build-postgres-image: root and debootstrap).
func resolvePostgres(ctx context.Context, opts *Options, hasImage func(string) (bool, error), cli *testcontainers.DockerClient) error {
	if opts.PostgresImage == "" {
		opts.PostgresImage = os.Getenv(envPostgresImage)
	}
	if opts.PostgresImage != "" {
		return nil
	}
	for _, image := range []string{LocalPostgresImage, PublicPostgresImage} {
		ok, err := hasImage(image)
		if err != nil {
			return err
		}
		if ok {
			opts.PostgresImage = image
			return nil
		}
	}
	pullCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	pullErr := func() error {
		res, err := cli.ImagePull(pullCtx, PublicPostgresImage, client.ImagePullOptions{})
		if err != nil {
			return err
		}
		return res.Wait(pullCtx)
	}()
	if pullErr == nil {
		opts.PostgresImage = PublicPostgresImage
		return nil
	}
	src, err := moduleSource()
	if err != nil {
		return fmt.Errorf("no Postgres image: %s cannot be pulled (%v), and %w", PublicPostgresImage, pullErr, err)
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if ok, err := hasImage(LocalPostgresImage); err == nil && ok {
		opts.PostgresImage = LocalPostgresImage
		return nil
	}
	fmt.Fprintf(os.Stderr, "outboxtest: %s cannot be pulled; building %s from Debian packages\n", PublicPostgresImage, LocalPostgresImage)
	if err := buildPostgresImage(ctx, src); err != nil {
		return fmt.Errorf("no Postgres image: %s cannot be pulled (%v), and building %s failed "+
			"(it needs root, debootstrap (Debian: apt-get install debootstrap) and a Debian mirror; "+
			"or set %s to an image the local Docker has): %w",
			PublicPostgresImage, pullErr, LocalPostgresImage, envPostgresImage, err)
	}
	opts.PostgresImage = LocalPostgresImage
	return nil
}

func (s *System) startPostgres(ctx context.Context) error {
	pg, err := s.run(ctx, "postgres", s.opts.PostgresImage, pgPort, map[string]string{
		"POSTGRES_USER":     "postgres",
		"POSTGRES_PASSWORD": postgresPassword,
		"POSTGRES_DB":       databaseName,
		// In the tmpfs below, which Docker makes world-writable (1777) only
		// on a path the image does not have: there both the official image
		// (root, then chown) and payment-outbox/postgres (never root) can
		// create the data directory.
		"PGDATA": "/outboxtest-pg/data",
	}, wait.ForExec([]string{"pg_isready", "-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-d", databaseName}).
		WithPollInterval(200*time.Millisecond),
		// A throwaway database: in memory and without durability, which
		// keeps it fast on slow container filesystems.
		testcontainers.WithTmpfs(map[string]string{"/outboxtest-pg": "rw"}),
		testcontainers.WithCmd("postgres",
			"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
			"-c", "max_connections=200"),
	)
	if err != nil {
		return err
	}
	s.internalURL = fmt.Sprintf("postgres://postgres:%s@postgres:5432/%s?sslmode=disable", postgresPassword, databaseName)
	host, err := s.hostFor(ctx, pg, pgPort)
	if err != nil {
		return err
	}
	port, err := pg.MappedPort(ctx, pgPort)
	if err != nil {
		return fmt.Errorf("error getting Postgres's port: %w", err)
	}
	s.DatabaseURL = fmt.Sprintf("postgres://postgres:%s@%s/%s?sslmode=disable",
		postgresPassword, net.JoinHostPort(host, port.Port()), databaseName)
	return nil
}

// keyPattern is an API key as internal/apikey mints them ("po_" and 40
// base62 characters), whatever else `api keys create` prints around it.
var keyPattern = regexp.MustCompile(`\bpo_[0-9A-Za-z]{40}\b`)

// createAPIKey runs `api keys create NAME` and returns the key it prints, or
// "" when the api image has no such command (an api without API keys).
func (s *System) createAPIKey(ctx context.Context) (string, error) {
	out, err := s.runOnce(ctx, "apikey", "keys", "create", s.opts.APIKeyName)
	var exit *exitError
	if errors.As(err, &exit) && exit.code == 2 && strings.Contains(out, "unknown command") {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("error running api keys create: %w\n%s", err, out)
	}
	keys := keyPattern.FindAllString(out, -1)
	if len(keys) != 1 {
		return "", fmt.Errorf("api keys create printed %d keys, want 1:\n%s", len(keys), out)
	}
	return keys[0], nil
}

type exitError struct{ code int }

func (e *exitError) Error() string { return "exit code " + strconv.Itoa(e.code) }

// runOnce runs the api image with args to completion and returns its output;
// a non-zero exit is an *exitError.
func (s *System) runOnce(ctx context.Context, name string, args ...string) (string, error) {
	c, err := s.run(ctx, name, s.opts.APIImage, "", map[string]string{"DATABASE_URL": s.internalURL},
		wait.ForExit().WithExitTimeout(s.opts.StartupTimeout), testcontainers.WithCmd(args...))
	if err != nil {
		return "", err
	}
	out, err := containerLogs(ctx, c)
	if err != nil {
		return "", err
	}
	state, err := c.State(ctx)
	if err != nil {
		return out, fmt.Errorf("error reading %s's state: %w", name, err)
	}
	// Done: nothing to keep it for.
	s.forget(c)
	if err := testcontainers.TerminateContainer(c, testcontainers.StopContext(ctx)); err != nil {
		return out, fmt.Errorf("error removing %s: %w", name, err)
	}
	if state.ExitCode != 0 {
		return out, &exitError{code: state.ExitCode}
	}
	return out, nil
}

// run starts a container on the system's network under the alias name and
// waits for strategy. port, if not empty, is published on the host.
func (s *System) run(ctx context.Context, name, image, port string, env map[string]string,
	strategy wait.Strategy, extra ...testcontainers.ContainerCustomizer,
) (*testcontainers.DockerContainer, error) {
	opts := []testcontainers.ContainerCustomizer{
		network.WithNetwork([]string{name}, s.network),
		testcontainers.WithEnv(env),
		testcontainers.WithLabels(map[string]string{labelSystem: name}),
		testcontainers.WithWaitStrategyAndDeadline(s.opts.StartupTimeout, strategy),
	}
	if port != "" {
		opts = append(opts, testcontainers.WithExposedPorts(port))
	}
	if s.opts.Logger != nil {
		opts = append(opts, testcontainers.WithLogger(s.opts.Logger))
	}
	opts = append(opts, extra...)

	c, err := testcontainers.Run(ctx, image, opts...)
	if c != nil {
		// Even a container that failed its wait is ours to remove.
		s.mu.Lock()
		s.containers = append(s.containers, namedContainer{name: name, c: c})
		s.mu.Unlock()
	}
	if err != nil {
		msg := fmt.Sprintf("error starting %s (%s): %v", name, image, err)
		if c != nil {
			if out, logErr := containerLogs(context.WithoutCancel(ctx), c); logErr == nil && out != "" {
				msg += "\n" + name + " log:\n" + tail(out, 4000)
			}
		}
		return nil, errors.New(msg)
	}
	return c, nil
}

// forget drops c from the containers Terminate removes.
func (s *System) forget(c *testcontainers.DockerContainer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.containers = slices.DeleteFunc(s.containers, func(nc namedContainer) bool { return nc.c == c })
}

// url returns http://HOST:PORT for c's published port.
func (s *System) url(ctx context.Context, c *testcontainers.DockerContainer, port string) (string, error) {
	host, err := s.hostFor(ctx, c, port)
	if err != nil {
		return "", err
	}
	mapped, err := c.MappedPort(ctx, port)
	if err != nil {
		return "", fmt.Errorf("error getting the published port of %s: %w", port, err)
	}
	return "http://" + net.JoinHostPort(host, mapped.Port()), nil
}

// hostFor finds, once per System, the address at which the test reaches
// the ports Docker publishes: TESTCONTAINERS_HOST_OVERRIDE if set, else the
// first of testcontainers' guess and the loopback address that accepts a
// connection on c's published port.
func (s *System) hostFor(ctx context.Context, c *testcontainers.DockerContainer, port string) (string, error) {
	s.mu.Lock()
	host := s.host
	s.mu.Unlock()
	if host != "" {
		return host, nil
	}
	if v, ok := os.LookupEnv(envHostOverride); ok && v != "" {
		host = v
	} else {
		guess, err := c.Host(ctx)
		if err != nil {
			return "", fmt.Errorf("error getting the Docker host: %w", err)
		}
		mapped, err := c.MappedPort(ctx, port)
		if err != nil {
			return "", fmt.Errorf("error getting the published port of %s: %w", port, err)
		}
		candidates := slices.Compact([]string{guess, "127.0.0.1"})
		for _, h := range candidates {
			conn, err := (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, "tcp", net.JoinHostPort(h, mapped.Port()))
			if err == nil {
				_ = conn.Close()
				host = h
				break
			}
		}
		if host == "" {
			return "", fmt.Errorf("cannot reach the port Docker published for %s at any of %v: set %s to the address where it publishes ports",
				port, candidates, envHostOverride)
		}
	}
	s.mu.Lock()
	s.host = host
	s.mu.Unlock()
	return host, nil
}

// waitHTTP polls url until it answers 200.
func waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer 200 in %s (last: %s)", url, timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func containerLogs(ctx context.Context, c *testcontainers.DockerContainer) (string, error) {
	rc, err := c.Logs(ctx)
	if err != nil {
		return "", fmt.Errorf("error reading logs: %w", err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, rc); err != nil && !errors.Is(err, io.EOF) {
		return buf.String(), fmt.Errorf("error reading logs: %w", err)
	}
	return buf.String(), nil
}

// merge returns base overridden by extra, then by fixed.
func merge(base, extra, fixed map[string]string) map[string]string {
	out := maps.Clone(base)
	maps.Copy(out, extra)
	maps.Copy(out, fixed)
	return out
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
