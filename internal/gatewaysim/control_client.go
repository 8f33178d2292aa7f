package gatewaysim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Client drives a simulator's control API over HTTP, for tests that run the
// simulator as a separate process. In-process tests can call the Simulator's
// methods directly instead.
type Client struct {
	baseURL    string
	httpClient *http.Client
}

// NewClient returns a Client for the simulator at baseURL
// ("http://127.0.0.1:8090"); a nil httpClient means http.DefaultClient.
func NewClient(baseURL string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	return &Client{baseURL: strings.TrimRight(baseURL, "/"), httpClient: httpClient}
}

// Authorize calls POST /sim/v1/authorize.
func (c *Client) Authorize(ctx context.Context, req AuthorizeRequest) (Authorization, error) {
	var auth Authorization
	err := c.do(ctx, http.MethodPost, "/sim/v1/authorize", req, &auth)
	return auth, err
}

// PortOnePay calls POST /sim/v1/portone/pay.
func (c *Client) PortOnePay(ctx context.Context, req PortOnePayRequest) (PortOnePayment, error) {
	var res PortOnePayment
	err := c.do(ctx, http.MethodPost, "/sim/v1/portone/pay", req, &res)
	return res, err
}

// Deposit plays the customer's transfer into a payment's virtual account
// (POST /sim/v1/deposit).
func (c *Client) Deposit(ctx context.Context, req DepositRequest) (DepositResult, error) {
	var out DepositResult
	err := c.do(ctx, http.MethodPost, "/sim/v1/deposit", req, &out)
	return out, err
}

// ConsoleCancel calls POST /sim/v1/console/cancel: a refund made by hand in
// the gateway's console.
func (c *Client) ConsoleCancel(ctx context.Context, req ConsoleCancelRequest) (ConsoleCancelResult, error) {
	var res ConsoleCancelResult
	err := c.do(ctx, http.MethodPost, "/sim/v1/console/cancel", req, &res)
	return res, err
}

// Config calls GET /sim/v1/config.
func (c *Client) Config(ctx context.Context) (Config, error) {
	var cfg Config
	err := c.do(ctx, http.MethodGet, "/sim/v1/config", nil, &cfg)
	return cfg, err
}

// SetConfig calls PUT /sim/v1/config.
func (c *Client) SetConfig(ctx context.Context, cfg Config) error {
	return c.do(ctx, http.MethodPut, "/sim/v1/config", cfg, nil)
}

// Script calls POST /sim/v1/script.
func (c *Client) Script(ctx context.Context, sc Script) (ScriptQueued, error) {
	var queued ScriptQueued
	err := c.do(ctx, http.MethodPost, "/sim/v1/script", sc, &queued)
	return queued, err
}

// Ledger calls GET /sim/v1/ledger.
func (c *Client) Ledger(ctx context.Context) (Ledger, error) {
	var ledger Ledger
	err := c.do(ctx, http.MethodGet, "/sim/v1/ledger", nil, &ledger)
	return ledger, err
}

// LedgerEntry calls GET /sim/v1/ledger/{paymentKey}.
func (c *Client) LedgerEntry(ctx context.Context, paymentKey string) (LedgerEntry, error) {
	var entry LedgerEntry
	err := c.do(ctx, http.MethodGet, "/sim/v1/ledger/"+url.PathEscape(paymentKey), nil, &entry)
	return entry, err
}

// Requests calls GET /sim/v1/requests; an empty paymentKey lists every call.
func (c *Client) Requests(ctx context.Context, paymentKey string) ([]RequestRecord, error) {
	path := "/sim/v1/requests"
	if paymentKey != "" {
		path += "?paymentKey=" + url.QueryEscape(paymentKey)
	}
	var reqs Requests
	err := c.do(ctx, http.MethodGet, path, nil, &reqs)
	return reqs.Requests, err
}

// WebhookStats calls GET /sim/v1/webhooks.
func (c *Client) WebhookStats(ctx context.Context) (WebhookStats, error) {
	var stats WebhookStats
	err := c.do(ctx, http.MethodGet, "/sim/v1/webhooks", nil, &stats)
	return stats, err
}

// TossWebhookStats calls GET /sim/v1/webhooks/toss.
func (c *Client) TossWebhookStats(ctx context.Context) (WebhookStats, error) {
	var stats WebhookStats
	err := c.do(ctx, http.MethodGet, "/sim/v1/webhooks/toss", nil, &stats)
	return stats, err
}

// Reset calls POST /sim/v1/reset.
func (c *Client) Reset(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/sim/v1/reset", nil, nil)
}

// do sends one control call. A non-2xx answer is returned as an *Error.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		encoded, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("error encoding %s %s request: %w", method, path, err)
		}
		body = bytes.NewReader(encoded)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.baseURL+path, body)
	if err != nil {
		return fmt.Errorf("error building %s %s request: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("error calling %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Errorf("error reading %s %s response: %w", method, path, err)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		simErr := &Error{Status: res.StatusCode}
		if err := json.Unmarshal(data, simErr); err != nil || simErr.Code == "" {
			simErr.Code, simErr.Message = CodeCommonError, strings.TrimSpace(string(data))
		}
		return fmt.Errorf("error calling %s %s: %w", method, path, simErr)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("error decoding %s %s response: %w", method, path, err)
	}
	return nil
}
