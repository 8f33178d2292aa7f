package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/payment-outbox/payment-outbox/internal/apikey"
	"github.com/payment-outbox/payment-outbox/internal/httpapi"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// checkKeysArgs checks the arguments after `api keys` before anything
// connects to the database.
func checkKeysArgs(args []string) error {
	switch {
	case len(args) == 2 && args[0] == "create":
		if err := apikey.ValidateName(args[1]); err != nil {
			return &usageError{msg: err.Error()}
		}
		return nil
	case len(args) == 1 && args[0] == "list":
		return nil
	case len(args) == 2 && args[0] == "revoke":
		return nil
	}
	return &usageError{msg: "unknown command " + strconv.Quote("keys "+strings.Join(args, " "))}
}

// keys runs `api keys create NAME`, `api keys list` or `api keys revoke ID`;
// checkKeysArgs has vetted args.
func keys(ctx context.Context, pool *pgxpool.Pool, args []string, stdout, stderr io.Writer) error {
	st := store.New()
	switch args[0] {
	case "create":
		return createKey(ctx, pool, st, args[1], stdout, stderr)
	case "list":
		return listKeys(ctx, pool, st, stdout)
	}
	return revokeKey(ctx, pool, st, args[1], stdout)
}

// createKey makes a key and prints it, alone on stdout, so a script can take
// it with API_KEY=$(api keys create NAME). Only its hash is stored: this is
// the one time anyone sees it.
func createKey(ctx context.Context, pool *pgxpool.Pool, st *store.Store, name string, stdout, stderr io.Writer) error {
	key, err := apikey.Generate()
	if err != nil {
		return fmt.Errorf("error generating API key: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("error generating API key id: %w", err)
	}
	hash := apikey.Hash(key)
	k, err := st.InsertAPIKey(ctx, pool, id.String(), name, apikey.DisplayPrefix(key), hash[:])
	if err != nil {
		return fmt.Errorf("error creating API key: %w", err)
	}
	if _, err := fmt.Fprintf(stderr, "api: created API key %s (%s, %s…); it is shown only this once\n",
		k.ID, k.Name, k.DisplayPrefix); err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, key)
	return err
}

// listKeys prints every key, revoked ones included, as a table.
func listKeys(ctx context.Context, pool *pgxpool.Pool, st *store.Store, stdout io.Writer) error {
	ks, err := st.APIKeys(ctx, pool)
	if err != nil {
		return fmt.Errorf("error listing API keys: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tCREATED\tLAST USED\tREVOKED")
	for _, k := range ks {
		fmt.Fprintf(tw, "%s\t%s\t%s…\t%s\t%s\t%s\n",
			k.ID, k.Name, k.DisplayPrefix, k.CreatedAt.UTC().Format(time.RFC3339), timeOrDash(k.LastUsedAt), timeOrDash(k.RevokedAt))
	}
	return tw.Flush()
}

// revokeKey revokes a key by id. Revoking a revoked key is not an error: the
// key is revoked, which is what was asked.
func revokeKey(ctx context.Context, pool *pgxpool.Pool, st *store.Store, id string, stdout io.Writer) error {
	// Truncated to what Postgres stores, so the answer tells a fresh
	// revocation from an earlier one by equality.
	at := time.Now().UTC().Truncate(time.Microsecond)
	k, err := st.RevokeAPIKey(ctx, pool, id, at)
	if errors.Is(err, apikey.ErrNotFound) {
		return fmt.Errorf("no API key with id %q (see api keys list)", id)
	}
	if err != nil {
		return fmt.Errorf("error revoking API key: %w", err)
	}
	if !k.RevokedAt.Equal(at) {
		_, err = fmt.Fprintf(stdout, "api: API key %s (%s) was already revoked at %s\n", k.ID, k.Name, k.RevokedAt.UTC().Format(time.RFC3339))
		return err
	}
	_, err = fmt.Fprintf(stdout, "api: revoked API key %s (%s); running API processes may accept it for up to %s more\n",
		k.ID, k.Name, httpapi.DefaultKeyCacheTTL)
	return err
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
