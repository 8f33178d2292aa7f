// Command gatewaysim serves the Toss-compatible payment gateway simulator
// (internal/gatewaysim) over HTTP: the Toss API under /v1, the control API
// under /sim/v1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
)

// shutdownTimeout bounds how long in-flight calls may take to finish after a
// signal.
const shutdownTimeout = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "gatewaysim: %v\n", err)
		os.Exit(1)
	}
}

// settings is everything read from flags and the environment.
type settings struct {
	addr           string
	secretKey      string
	portOneSecret  string
	portOneStoreID string
	logLevel       slog.Level
	config         gatewaysim.Config
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	set, err := parseSettings(args, getenv)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: set.logLevel}))

	sim, err := gatewaysim.New(gatewaysim.Options{
		SecretKey: set.secretKey, PortOneSecret: set.portOneSecret, PortOneStoreID: set.portOneStoreID,
		Config: set.config, Logger: logger,
	})
	if err != nil {
		return fmt.Errorf("error creating simulator: %w", err)
	}
	listener, err := net.Listen("tcp", set.addr)
	if err != nil {
		return fmt.Errorf("error listening on %s: %w", set.addr, err)
	}
	server := &http.Server{
		Handler:           sim,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- server.Serve(listener) }()
	logger.Info("gatewaysim listening",
		slog.String("addr", listener.Addr().String()),
		slog.String("error_rates", gatewaysim.FormatErrorRates(set.config.ErrorRates)),
		slog.Float64("lost_rate", set.config.LostResponseRate),
		slog.Float64("hold_rate", set.config.HoldRate),
		slog.Duration("hold_for", time.Duration(set.config.HoldFor)),
		slog.Duration("consecutive_cancel_window", time.Duration(set.config.ConsecutiveCancelWindow)),
		slog.Bool("auto_authorize", set.config.AutoAuthorize),
		slog.String("portone_webhook_url", set.config.PortOneWebhookURL),
		slog.String("toss_webhook_url", set.config.TossWebhookURL))

	select {
	case err := <-serveErr:
		return fmt.Errorf("error serving: %w", err)
	case <-ctx.Done():
	}
	logger.Info("gatewaysim shutting down")
	// Scripted delays and holds can be long; cut them short so in-flight
	// calls (held ones included, which are then performed) finish within
	// the timeout instead of being killed mid-answer.
	sim.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := server.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("error shutting down: %w", err)
	}
	return nil
}

// parseSettings reads the flags; each falls back to its SIM_* environment
// variable, then to the default. A bad value in either is an error.
func parseSettings(args []string, getenv func(string) string) (settings, error) {
	fs := flag.NewFlagSet("gatewaysim", flag.ContinueOnError)
	// Errors are reported as one line by main; the full usage only on -h.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}

	addr := fs.String("addr", env("SIM_ADDR", ":8090"), "listen address (SIM_ADDR)")
	secretKey := fs.String("secret-key", env("SIM_SECRET_KEY", gatewaysim.DefaultSecretKey), "the accepted secret key (SIM_SECRET_KEY)")
	portOneSecret := fs.String("portone-secret", env("SIM_PORTONE_SECRET", gatewaysim.DefaultPortOneSecret), "the accepted PortOne API secret (SIM_PORTONE_SECRET)")
	portOneStoreID := fs.String("portone-store-id", env("SIM_PORTONE_STORE_ID", gatewaysim.DefaultPortOneStoreID), "the PortOne store the simulator serves (SIM_PORTONE_STORE_ID)")
	logLevel := fs.String("log-level", env("SIM_LOG_LEVEL", "info"), "debug logs every call (SIM_LOG_LEVEL)")
	latency := fs.String("latency", env("SIM_LATENCY", "0s"), "latency added to every /v1 call (SIM_LATENCY)")
	jitter := fs.String("latency-jitter", env("SIM_LATENCY_JITTER", "0s"), "random extra latency up to this (SIM_LATENCY_JITTER)")
	errorRates := fs.String("error-rate", env("SIM_ERROR_RATE", ""), "injected errors per confirm/cancel, CODE=RATE,... (SIM_ERROR_RATE)")
	lostRate := fs.String("lost-rate", env("SIM_LOST_RATE", "0"), "probability a performed confirm/cancel loses its response (SIM_LOST_RATE)")
	holdRate := fs.String("hold-rate", env("SIM_HOLD_RATE", "0"), "probability a confirm/cancel is held: answered and performed only after -hold-for (SIM_HOLD_RATE)")
	holdFor := fs.String("hold-for", env("SIM_HOLD_FOR", "0s"), "how long a held confirm/cancel waits; longer than the client's timeout to make it give up (SIM_HOLD_FOR)")
	cancelWindow := fs.String("consecutive-cancel-window", env("SIM_CONSECUTIVE_CANCEL_WINDOW", "0s"), "refuse a cancel this soon after the last one for the payment with FORBIDDEN_CONSECUTIVE_REQUEST; 0 is off (SIM_CONSECUTIVE_CANCEL_WINDOW)")
	seed := fs.String("seed", env("SIM_SEED", "1"), "seed of the random faults (SIM_SEED)")
	sessionTTL := fs.String("session-ttl", env("SIM_SESSION_TTL", gatewaysim.DefaultSessionTTL.String()), "confirm deadline after authentication (SIM_SESSION_TTL)")
	autoAuthorize := fs.String("auto-authorize", env("SIM_AUTO_AUTHORIZE", "false"), "confirm creates unknown sessions from its body (SIM_AUTO_AUTHORIZE)")
	portOneWebhookURL := fs.String("portone-webhook-url", env("SIM_PORTONE_WEBHOOK_URL", ""), "POST a signed PortOne webhook here on every PortOne payment status change; empty sends none (SIM_PORTONE_WEBHOOK_URL)")
	portOneWebhookSecret := fs.String("portone-webhook-secret", env("SIM_PORTONE_WEBHOOK_SECRET", ""), "the whsec_… secret those webhooks are signed with (SIM_PORTONE_WEBHOOK_SECRET)")
	tossWebhookURL := fs.String("toss-webhook-url", env("SIM_TOSS_WEBHOOK_URL", ""), "POST Toss's DEPOSIT_CALLBACK here when a virtual account is paid into; empty sends none (SIM_TOSS_WEBHOOK_URL)")
	replayErrors := fs.String("replay-cached-errors", env("SIM_REPLAY_CACHED_ERRORS", "false"), "store injected errors under the Idempotency-Key (SIM_REPLAY_CACHED_ERRORS)")
	// A bare -auto-authorize or -replay-cached-errors means true, as for a
	// bool flag, while the value stays a string so the env fallback works.
	for _, name := range []string{"auto-authorize", "replay-cached-errors"} {
		fs.Lookup(name).Value = &boolString{value: fs.Lookup(name).Value}
	}

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "usage: gatewaysim [flags] (each flag also reads its SIM_* environment variable)")
			fs.SetOutput(os.Stderr)
			fs.PrintDefaults()
		}
		return settings{}, err
	}
	if fs.NArg() > 0 {
		return settings{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	set := settings{addr: *addr, secretKey: *secretKey, portOneSecret: *portOneSecret, portOneStoreID: *portOneStoreID}
	if err := set.logLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return settings{}, fmt.Errorf("bad -log-level: %w", err)
	}
	var err error
	cfg := &set.config
	if cfg.Latency, err = parseDuration("latency", *latency); err != nil {
		return settings{}, err
	}
	if cfg.LatencyJitter, err = parseDuration("latency-jitter", *jitter); err != nil {
		return settings{}, err
	}
	if cfg.SessionTTL, err = parseDuration("session-ttl", *sessionTTL); err != nil {
		return settings{}, err
	}
	if cfg.ErrorRates, err = gatewaysim.ParseErrorRates(*errorRates); err != nil {
		return settings{}, fmt.Errorf("bad -error-rate: %w", err)
	}
	if cfg.LostResponseRate, err = strconv.ParseFloat(*lostRate, 64); err != nil {
		return settings{}, fmt.Errorf("bad -lost-rate: %w", err)
	}
	if cfg.HoldRate, err = strconv.ParseFloat(*holdRate, 64); err != nil {
		return settings{}, fmt.Errorf("bad -hold-rate: %w", err)
	}
	if cfg.HoldFor, err = parseDuration("hold-for", *holdFor); err != nil {
		return settings{}, err
	}
	if cfg.ConsecutiveCancelWindow, err = parseDuration("consecutive-cancel-window", *cancelWindow); err != nil {
		return settings{}, err
	}
	if cfg.Seed, err = strconv.ParseUint(*seed, 10, 64); err != nil {
		return settings{}, fmt.Errorf("bad -seed: %w", err)
	}
	if cfg.AutoAuthorize, err = strconv.ParseBool(*autoAuthorize); err != nil {
		return settings{}, fmt.Errorf("bad -auto-authorize: %w", err)
	}
	if cfg.ReplayCachedErrors, err = strconv.ParseBool(*replayErrors); err != nil {
		return settings{}, fmt.Errorf("bad -replay-cached-errors: %w", err)
	}
	cfg.PortOneWebhookURL, cfg.PortOneWebhookSecret = *portOneWebhookURL, *portOneWebhookSecret
	cfg.TossWebhookURL = *tossWebhookURL
	if err := cfg.Validate(); err != nil {
		return settings{}, fmt.Errorf("bad fault flags: %w", err)
	}
	return set, nil
}

func parseDuration(name, value string) (gatewaysim.Duration, error) {
	d, err := time.ParseDuration(value)
	if err != nil {
		return 0, fmt.Errorf("bad -%s: %w", name, err)
	}
	return gatewaysim.Duration(d), nil
}

// boolString is a string flag that may also be given bare, like a bool flag.
type boolString struct {
	value flag.Value
}

func (b *boolString) String() string {
	if b.value == nil {
		return ""
	}
	return b.value.String()
}

func (b *boolString) Set(s string) error { return b.value.Set(s) }

// IsBoolFlag makes the flag package accept "-name" alone, setting "true".
func (b *boolString) IsBoolFlag() bool { return true }
