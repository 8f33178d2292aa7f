package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// opsCommand is a parsed `api ops …` command line.
type opsCommand struct {
	// path is the API path after /v1/ops/; method GET or POST.
	method, path string
	// body is the JSON request body of a POST.
	body map[string]any
}

// opsActions maps the command line's action names to the API's paths.
var opsActions = map[string]string{
	"lookup":        "lookup",
	"retry":         "retry",
	"resend-cancel": "resend-cancel",
	"settle-cancel": "settle-cancel",
	"resolve":       "resolve",
	"acknowledge":   "acknowledge",
	// refund-account takes the customer's account in --bank, --account
	// and --holder (docs/design.md section 19).
	"refund-account": "refund-account",
}

// parseOpsArgs reads the arguments after `api ops` before anything
// connects: `ACTION PAYMENT_ID --reason TEXT [--cancel CANCEL_ID]`,
// `settle-cancel PAYMENT_ID --decision done|resend|abandon --reason TEXT
// [--cancel CANCEL_ID]`, `refund-account PAYMENT_ID --bank CODE --account
// DIGITS --holder NAME --reason TEXT [--cancel CANCEL_ID]`,
// `retry-job JOB_ID --reason TEXT` or `actions PAYMENT_ID`.
func parseOpsArgs(args []string) (opsCommand, error) {
	if len(args) == 2 && args[0] == "actions" {
		return opsCommand{method: http.MethodGet, path: "payments/" + url.PathEscape(args[1]) + "/actions"}, nil
	}
	if len(args) < 2 {
		return opsCommand{}, &usageError{msg: "ops needs an action and an id"}
	}
	action, id := args[0], args[1]
	var reason, cancelID, decision string
	refund := map[string]string{}
	for i := 2; i < len(args); i++ {
		name, value, inline := strings.Cut(args[i], "=")
		if !inline {
			if i+1 == len(args) {
				return opsCommand{}, &usageError{msg: args[i] + " needs a value"}
			}
			i++
			value = args[i]
		}
		switch name {
		case "--reason", "-reason":
			reason = value
		case "--cancel", "-cancel":
			cancelID = value
		case "--decision", "-decision":
			decision = value
		case "--bank", "-bank":
			refund["bank"] = value
		case "--account", "-account":
			refund["accountNumber"] = value
		case "--holder", "-holder":
			refund["holderName"] = value
		default:
			return opsCommand{}, &usageError{msg: "unknown flag " + strconv.Quote(name)}
		}
	}
	if strings.TrimSpace(reason) == "" {
		return opsCommand{}, &usageError{msg: "every operator action needs --reason: say why, for the audit trail"}
	}
	body := map[string]any{"reason": reason}
	if action == "retry-job" {
		if n, err := strconv.ParseInt(id, 10, 64); err != nil || n <= 0 {
			return opsCommand{}, &usageError{msg: "retry-job takes a job id (a positive integer), not " + strconv.Quote(id)}
		}
		return opsCommand{method: http.MethodPost, path: "jobs/" + id + "/retry", body: body}, nil
	}
	path, ok := opsActions[action]
	if !ok {
		return opsCommand{}, &usageError{msg: "unknown ops action " + strconv.Quote(action)}
	}
	if cancelID != "" {
		if action != "resend-cancel" && action != "settle-cancel" && action != "refund-account" {
			return opsCommand{}, &usageError{msg: "--cancel goes with resend-cancel, settle-cancel and refund-account only"}
		}
		body["cancelId"] = cancelID
	}
	switch {
	case action == "refund-account" && len(refund) != 3:
		return opsCommand{}, &usageError{msg: "refund-account needs the customer's account: --bank, --account and --holder"}
	case action != "refund-account" && len(refund) > 0:
		return opsCommand{}, &usageError{msg: "--bank, --account and --holder go with refund-account only"}
	case len(refund) > 0:
		body["refundReceiveAccount"] = refund
	}
	switch {
	case action == "settle-cancel" && decision == "":
		return opsCommand{}, &usageError{msg: "settle-cancel needs --decision done, resend or abandon"}
	case action != "settle-cancel" && decision != "":
		return opsCommand{}, &usageError{msg: "--decision goes with settle-cancel only"}
	case decision != "":
		body["decision"] = decision
	}
	return opsCommand{method: http.MethodPost, path: "payments/" + url.PathEscape(id) + "/" + path, body: body}, nil
}

// ops runs an operator action through the api's HTTP API, as the key in
// API_KEY: the api authenticates, scopes and audits it exactly as it does
// the console's and any other client's, so the command line has no back
// door to the database. It prints the api's JSON answer.
func ops(ctx context.Context, cmd opsCommand, getenv func(string) string, stdout io.Writer) error {
	base := getenv("API_URL")
	if base == "" {
		base = "http://127.0.0.1:8080"
	}
	key := getenv("API_KEY")
	if key == "" {
		return errors.New("API_KEY is required: an operator key (api keys create NAME --scope operator)")
	}
	var body io.Reader
	if cmd.body != nil {
		raw, err := json.Marshal(cmd.body)
		if err != nil {
			return fmt.Errorf("error encoding request: %w", err)
		}
		body = bytes.NewReader(raw)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, cmd.method, strings.TrimSuffix(base, "/")+"/v1/ops/"+cmd.path, body)
	if err != nil {
		return fmt.Errorf("API_URL is invalid: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("error calling the api: %w", err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("error reading the api's answer: %w", err)
	}
	if res.StatusCode >= 300 {
		var p struct {
			Code   string `json:"code"`
			Detail string `json:"detail"`
		}
		if json.Unmarshal(raw, &p) == nil && p.Code != "" {
			return fmt.Errorf("%d %s: %s", res.StatusCode, p.Code, p.Detail)
		}
		return fmt.Errorf("the api answered %s", res.Status)
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, raw, "", "  ") != nil {
		pretty.Reset()
		pretty.Write(raw)
	}
	pretty.WriteByte('\n')
	_, err = stdout.Write(pretty.Bytes())
	return err
}
