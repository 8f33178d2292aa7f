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
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/payment-outbox/payment-outbox/internal/apikey"
	"github.com/payment-outbox/payment-outbox/internal/httpapi"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// checkKeysArgs checks the arguments after `api keys` before anything
// connects to the database.
func checkKeysArgs(args []string) error {
	switch {
	case len(args) >= 2 && args[0] == "create":
		_, err := parseCreateArgs(args[1:])
		return err
	case len(args) == 1 && args[0] == "list":
		return nil
	case len(args) == 2 && args[0] == "revoke":
		return nil
	}
	return &usageError{msg: "unknown command " + strconv.Quote("keys "+strings.Join(args, " "))}
}

// createArgs is what `api keys create` was asked for.
type createArgs struct {
	name  string
	scope apikey.Scope
	owner payment.Owner
}

// parseCreateArgs reads `NAME [--scope SCOPE] [--owner OWNER]` (the flags
// before or after the name); a key made without a scope is a checkout's, as
// every key was before scopes, and one made without an owner is the default
// owner's, as every key was before owners.
func parseCreateArgs(args []string) (createArgs, error) {
	out := createArgs{scope: apikey.ScopeCheckout, owner: payment.DefaultOwner}
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		flag, value, inline := strings.Cut(a, "=")
		if !inline {
			flag, value = a, ""
		}
		switch flag {
		case "--scope", "-scope", "--owner", "-owner":
			if !inline {
				if i+1 == len(args) {
					return createArgs{}, &usageError{msg: strings.TrimLeft(flag, "-") + " needs a value: " + flagValues[strings.TrimLeft(flag, "-")]}
				}
				i++
				value = args[i]
			}
			if strings.HasSuffix(flag, "scope") {
				sc, err := apikey.ParseScope(value)
				if err != nil {
					return createArgs{}, &usageError{msg: err.Error()}
				}
				out.scope = sc
				continue
			}
			if err := payment.ValidateOwner(value); err != nil {
				return createArgs{}, &usageError{msg: err.Error()}
			}
			out.owner = payment.Owner(value)
		default:
			rest = append(rest, a)
		}
	}
	if len(rest) != 1 {
		return createArgs{}, &usageError{msg: "keys create takes one NAME (quote it if it has spaces), an optional --scope and an optional --owner"}
	}
	if err := apikey.ValidateName(rest[0]); err != nil {
		return createArgs{}, &usageError{msg: err.Error()}
	}
	out.name = rest[0]
	return out, nil
}

// flagValues says what each flag of `keys create` takes.
var flagValues = map[string]string{
	"scope": "checkout, operator or readonly",
	"owner": "the name of the checkout service the key belongs to, such as shop-b",
}

// keys runs `api keys create NAME [--scope S] [--owner O]`, `api keys list`
// or `api keys revoke ID`; checkKeysArgs has vetted args.
func keys(ctx context.Context, pool *pgxpool.Pool, args []string, stdout, stderr io.Writer) error {
	st := store.New()
	switch args[0] {
	case "create":
		ca, _ := parseCreateArgs(args[1:])
		return createKey(ctx, pool, st, ca, stdout, stderr)
	case "list":
		return listKeys(ctx, pool, st, stdout)
	}
	return revokeKey(ctx, pool, st, args[1], stdout)
}

// createKey makes a key and prints it, alone on stdout, so a script can take
// it with API_KEY=$(api keys create NAME). Only its hash is stored: this is
// the one time anyone sees it. An owner named for the first time is added,
// and stderr says so, so that a mistyped owner does not pass unseen.
func createKey(ctx context.Context, pool *pgxpool.Pool, st *store.Store, ca createArgs, stdout, stderr io.Writer) error {
	key, err := apikey.Generate()
	if err != nil {
		return fmt.Errorf("error generating API key: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("error generating API key id: %w", err)
	}
	hash := apikey.Hash(key)
	var (
		k     apikey.Key
		added bool
	)
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if added, err = st.InsertOwner(ctx, tx, ca.owner); err != nil {
			return err
		}
		k, err = st.InsertAPIKey(ctx, tx, id.String(), ca.name, apikey.DisplayPrefix(key), hash[:], ca.scope, ca.owner)
		return err
	})
	if err != nil {
		return fmt.Errorf("error creating API key: %w", err)
	}
	if added {
		if _, err := fmt.Fprintf(stderr, "api: added owner %s: its keys see only its own payments and webhook endpoints\n", ca.owner); err != nil {
			return err
		}
	}
	if _, err := fmt.Fprintf(stderr, "api: created %s API key %s (%s, owner %s, %s…); it is shown only this once\n",
		k.Scope, k.ID, k.Name, k.Owner, k.DisplayPrefix); err != nil {
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
	fmt.Fprintln(tw, "ID\tNAME\tSCOPE\tOWNER\tPREFIX\tCREATED\tLAST USED\tREVOKED")
	for _, k := range ks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s…\t%s\t%s\t%s\n",
			k.ID, k.Name, k.Scope, k.Owner, k.DisplayPrefix, k.CreatedAt.UTC().Format(time.RFC3339), timeOrDash(k.LastUsedAt), timeOrDash(k.RevokedAt))
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
