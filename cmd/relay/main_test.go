package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/payflow"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/relay"
)

func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

func TestLoadConfigGateways(t *testing.T) {
	t.Parallel()

	const url = "postgres://postgres@127.0.0.1:1/db"
	for _, tt := range []struct {
		name string
		vars map[string]string
		want string // the error, or "" and the gateways served below
		gws  []string
	}{
		{"None", map[string]string{"DATABASE_URL": url}, "no gateway configured", nil},
		{"TossOnly", map[string]string{"DATABASE_URL": url, "TOSS_SECRET_KEY": "test_sk_x"}, "", []string{payment.GatewayToss}},
		{"PortOneOnly", map[string]string{"DATABASE_URL": url, "PORTONE_API_SECRET": "s3cret", "PORTONE_STORE_ID": "store-1"}, "", []string{payment.GatewayPortOne}},
		{"Both", map[string]string{"DATABASE_URL": url, "TOSS_SECRET_KEY": "test_sk_x", "PORTONE_API_SECRET": "s3cret", "PORTONE_STORE_ID": "store-1"}, "", []string{payment.GatewayPortOne, payment.GatewayToss}},
		{"PortOneWithoutStore", map[string]string{"DATABASE_URL": url, "PORTONE_API_SECRET": "s3cret"}, "PORTONE_STORE_ID", nil},
		{"PortOneBaseWithoutSecret", map[string]string{"DATABASE_URL": url, "TOSS_SECRET_KEY": "test_sk_x", "PORTONE_API_BASE_URL": "http://127.0.0.1:8090"}, "PORTONE_API_SECRET", nil},
		{"BadPortOneBase", map[string]string{"DATABASE_URL": url, "PORTONE_API_SECRET": "s3cret", "PORTONE_STORE_ID": "store-1", "PORTONE_API_BASE_URL": "ftp://x"}, "PORTONE_API_BASE_URL", nil},
		{"PortOneSecretWithNewline", map[string]string{"DATABASE_URL": url, "PORTONE_API_SECRET": "s3cret\n", "PORTONE_STORE_ID": "store-1"}, "PORTONE_API_SECRET", nil},
		{"BadPortOneConfirmMode", map[string]string{"DATABASE_URL": url, "PORTONE_API_SECRET": "s3cret", "PORTONE_STORE_ID": "store-1", "PORTONE_CONFIRM_MODE": "auto"}, "PORTONE_CONFIRM_MODE must be browser or manual", nil},
		{"PortOneManual", map[string]string{"DATABASE_URL": url, "PORTONE_API_SECRET": "s3cret", "PORTONE_STORE_ID": "store-1", "PORTONE_CONFIRM_MODE": "manual"}, "", []string{payment.GatewayPortOne}},
		{"BadOpenDeadline", map[string]string{"DATABASE_URL": url, "TOSS_SECRET_KEY": "test_sk_x", "RELAY_OPEN_DEADLINE": "soon"}, "RELAY_OPEN_DEADLINE", nil},
		{"BadBooksInterval", map[string]string{"DATABASE_URL": url, "TOSS_SECRET_KEY": "test_sk_x", "RELAY_BOOKS_INTERVAL": "daily"}, "RELAY_BOOKS_INTERVAL", nil},
		{"BadBooksWindow", map[string]string{"DATABASE_URL": url, "TOSS_SECRET_KEY": "test_sk_x", "RELAY_BOOKS_WINDOW": "-48h"}, "RELAY_BOOKS_WINDOW", nil},
		{"BadBooksLag", map[string]string{"DATABASE_URL": url, "TOSS_SECRET_KEY": "test_sk_x", "RELAY_BOOKS_LAG": "0"}, "RELAY_BOOKS_LAG", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := loadConfig(env(tt.vars))
			var served []string
			if err == nil {
				var gws map[string]relay.Gateway
				gws, err = cfg.gateways()
				for name := range gws {
					served = append(served, name)
				}
			}
			if tt.want == "" {
				require.NoError(t, err)
				require.ElementsMatch(t, tt.gws, served)
				return
			}
			require.ErrorContains(t, err, tt.want)
			require.False(t, strings.Contains(err.Error(), "\n"), "the reason is one line")
			require.NotContains(t, err.Error(), "s3cret")
		})
	}
}

func TestLoadConfigRetention(t *testing.T) {
	t.Parallel()
	base := map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:1/db", "TOSS_SECRET_KEY": "test_sk_x"}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for bk, bv := range base {
			m[bk] = bv
		}
		return m
	}

	cfg, err := loadConfig(env(base))
	require.NoError(t, err)
	require.Equal(t, 7*24*time.Hour, cfg.completedRetention)
	require.Equal(t, 7*24*time.Hour, cfg.cancelledRetention)
	require.Equal(t, 30*24*time.Hour, cfg.discardedRetention, "discarded jobs are kept long: a person may need them")

	cfg, err = loadConfig(env(with("RELAY_COMPLETED_JOB_RETENTION", "48h")))
	require.NoError(t, err)
	require.Equal(t, 48*time.Hour, cfg.completedRetention)

	cfg, err = loadConfig(env(with("RELAY_DISCARDED_JOB_RETENTION", "0")))
	require.NoError(t, err)
	require.Equal(t, time.Duration(-1), cfg.discardedRetention, "0 keeps them forever (River's -1)")

	for _, name := range []string{"RELAY_COMPLETED_JOB_RETENTION", "RELAY_CANCELLED_JOB_RETENTION", "RELAY_DISCARDED_JOB_RETENTION"} {
		for _, bad := range []string{"-1h", "a week"} {
			_, err := loadConfig(env(with(name, bad)))
			require.ErrorContains(t, err, name)
		}
	}
}

func TestLoadConfigPortOneConfirmMode(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:1/db", "PORTONE_API_SECRET": "s3cret", "PORTONE_STORE_ID": "store-1"}
	cfg, err := loadConfig(env(vars))
	require.NoError(t, err)
	require.Equal(t, payment.PortOneConfirmBrowser, cfg.portOneConfirmMode, "today's flow unless asked")
	vars["PORTONE_CONFIRM_MODE"] = "manual"
	cfg, err = loadConfig(env(vars))
	require.NoError(t, err)
	require.Equal(t, payment.PortOneConfirmManual, cfg.portOneConfirmMode)
	require.Contains(t, cfg.describeGateways(), "confirm: manual")
}

func TestLoadConfigWebhookLookupInterval(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:1/db", "TOSS_SECRET_KEY": "test_sk_x"}
	cfg, err := loadConfig(env(vars))
	require.NoError(t, err)
	require.Equal(t, payflow.DefaultWebhookLookupInterval, cfg.webhookLookupInterval, "the api's default")
	vars["WEBHOOK_LOOKUP_INTERVAL"] = "1m"
	cfg, err = loadConfig(env(vars))
	require.NoError(t, err)
	require.Equal(t, time.Minute, cfg.webhookLookupInterval)
	vars["WEBHOOK_LOOKUP_INTERVAL"] = "2h"
	_, err = loadConfig(env(vars))
	require.ErrorContains(t, err, "WEBHOOK_LOOKUP_INTERVAL")
}
