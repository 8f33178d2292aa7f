// Package httpcall is the HTTP plumbing every gateway client shares: one
// call, sent once, read within a limit, with the credential kept out of
// every error. The gateway clients (internal/gateway/toss,
// internal/gateway/portone) say what differs between their APIs through
// Config: how the Idempotency-Key is checked and written, and how an error
// body decodes. What a 2xx body means stays with the client.
//
// A Caller never retries and never follows a redirect; retries belong to the
// relay, so that a failure is retried in one layer only (docs/design.md
// section 13).
package httpcall

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/payment"
)

const (
	// MaxBodyBytes bounds what is read from one response. A payment record
	// with many cancels is a few KiB, and a page of a gateway's books is
	// sized to stay well inside it; anything near this limit is not an
	// answer we can use.
	MaxBodyBytes = 1 << 20
	// maxSnippetBytes is how much of an unexpected body goes into an error.
	maxSnippetBytes = 120
)

// ErrBodyTooLarge is wrapped when a response exceeds MaxBodyBytes.
var ErrBodyTooLarge = fmt.Errorf("body exceeds %d bytes", MaxBodyBytes)

// Config says how one gateway's calls are made. Every field is required
// except HTTPClient, UserAgent and Secrets.
type Config struct {
	// Name names the gateway in error text ("Toss", "PortOne").
	Name string
	// BaseURL is the API root, as CheckBaseURL returned it.
	BaseURL string
	// Authorization is the whole Authorization header value. It is
	// redacted from every error, as are Secrets.
	Authorization string `json:"-"`
	// Secrets are the other forms of the credential a misbehaving proxy
	// could echo (the raw key, an encoding without its padding); they are
	// removed from error text.
	Secrets []string `json:"-"`
	// UserAgent is sent on every call if set.
	UserAgent string
	// Timeout bounds one call, including reading the body. It is a context
	// deadline rather than http.Client.Timeout so that it holds for a
	// caller-supplied HTTPClient too.
	Timeout time.Duration
	// HTTPClient is used for the calls if set; the Caller works on a shallow
	// copy with redirects disabled (Client). Its Transport is shared as is.
	HTTPClient *http.Client
	// CheckKey validates an Idempotency-Key against the gateway's limits.
	// It runs before anything else for every POST and for any request that
	// carries a key, so no POST ever leaves without a valid one.
	CheckKey func(key string) error
	// KeyHeader writes a checked key as the header's value: Toss takes it
	// raw, PortOne as an RFC 8941 string (quoted).
	KeyHeader func(key string) string
	// ErrorField names what identifies the gateway's error body ("code",
	// "type"), for the error text of an answer without one.
	ErrorField string
	// DecodeError reads an error status's body as the gateway's error
	// answer; ok is false when it is not one (a proxy's page), and the
	// status then decides.
	DecodeError func(raw []byte) (code, message string, ok bool)
}

// Caller makes one gateway's HTTP calls. It is safe for concurrent use.
type Caller struct {
	cfg     Config
	hc      *http.Client
	secrets []string // the credential in every form, longest first
}

// New returns a Caller for cfg. It fails on a missing hook, name or
// credential, or a non-positive timeout: each is a bug in the client that
// builds it.
func New(cfg Config) (*Caller, error) {
	switch {
	case cfg.Name == "" || cfg.ErrorField == "":
		return nil, errors.New("error creating HTTP caller: no gateway name or error field")
	case cfg.Authorization == "":
		return nil, fmt.Errorf("error creating %s HTTP caller: no Authorization", cfg.Name)
	case cfg.CheckKey == nil || cfg.KeyHeader == nil || cfg.DecodeError == nil:
		return nil, fmt.Errorf("error creating %s HTTP caller: a hook is missing", cfg.Name)
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("error creating %s HTTP caller: timeout %s is negative", cfg.Name, cfg.Timeout)
	case cfg.Timeout == 0:
		return nil, fmt.Errorf("error creating %s HTTP caller: no timeout", cfg.Name)
	}
	if _, err := CheckBaseURL(cfg.BaseURL, cfg.BaseURL); err != nil {
		return nil, fmt.Errorf("error creating %s HTTP caller: %w", cfg.Name, err)
	}
	secrets := []string{cfg.Authorization}
	if _, cred, ok := strings.Cut(cfg.Authorization, " "); ok {
		secrets = append(secrets, cred)
	}
	for _, s := range cfg.Secrets {
		if s != "" {
			secrets = append(secrets, s)
		}
	}
	return &Caller{cfg: cfg, hc: Client(cfg.HTTPClient), secrets: secrets}, nil
}

// Client returns the http.Client a Caller uses for hc: a shallow copy that
// never follows a redirect, or, for nil, one on DefaultTransport. Neither
// gateway redirects; following one would resend the Authorization header
// (and for 307/308 the POST body) somewhere we did not configure, or turn a
// POST into a GET. A redirect is surfaced as an answer instead, which the
// classification reads as misconfiguration.
func Client(hc *http.Client) *http.Client {
	var c http.Client
	if hc != nil {
		c = *hc
	} else {
		c = http.Client{Transport: DefaultTransport()}
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// DefaultTransport is tuned for one busy host: the relay runs many workers
// against the same gateway, and the standard library's default of two idle
// connections per host would make most calls pay for a new TLS handshake.
func DefaultTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          200,
		MaxIdleConnsPerHost:   100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// Request is one call to make.
type Request struct {
	// Op names the call in error text.
	Op payment.Operation
	// Method is the HTTP method.
	Method string
	// Path is appended to the base URL: already escaped (CheckSegment each
	// value first), with its query.
	Path string
	// Body is encoded as JSON; nil sends none.
	Body any
	// IdempotencyKey is sent as the Idempotency-Key header if set; a POST
	// requires one.
	IdempotencyKey string
}

// Do makes one call and returns what it learned: for a 2xx, the Result so
// far (HTTPStatus) and the body, never nil, for the client to read; for
// anything else the complete Result (the gateway's code and message, or
// Err) and a nil body.
func (c *Caller) Do(ctx context.Context, r Request) (gateway.Result, []byte) {
	// The key first, before anything is encoded or built: a POST without a
	// valid key is never sent, whatever else is wrong with it.
	if r.Method == http.MethodPost || r.IdempotencyKey != "" {
		if err := c.cfg.CheckKey(r.IdempotencyKey); err != nil {
			return c.NotSent(r.Op, err), nil
		}
	}
	var body io.Reader
	if r.Body != nil {
		b, err := json.Marshal(r.Body)
		if err != nil {
			return c.NotSent(r.Op, fmt.Errorf("error encoding body: %w", err)), nil
		}
		body = bytes.NewReader(b)
	}

	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, r.Method, c.cfg.BaseURL+r.Path, body)
	if err != nil {
		return c.NotSent(r.Op, fmt.Errorf("error building request: %w", err)), nil
	}
	req.Header.Set("Authorization", c.cfg.Authorization)
	req.Header.Set("Accept", "application/json")
	if c.cfg.UserAgent != "" {
		req.Header.Set("User-Agent", c.cfg.UserAgent)
	}
	if r.Body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.IdempotencyKey != "" {
		req.Header.Set("Idempotency-Key", c.cfg.KeyHeader(r.IdempotencyKey))
	}
	// net/http silently resends a request when a reused keep-alive
	// connection turns out dead, if it can rewind the body. That would be a
	// second gateway call with no attempt row of its own; the relay is the
	// one retry layer, so no request is replayable.
	req.GetBody = nil

	resp, err := c.hc.Do(req)
	if err != nil {
		// net/http's errors name the method and URL, never the headers, and
		// the base URL cannot hold credentials (CheckBaseURL).
		return gateway.Result{Err: fmt.Errorf("error calling %s %s: %w", c.cfg.Name, r.Op, err)}, nil
	}
	defer resp.Body.Close()

	res := gateway.Result{HTTPStatus: resp.StatusCode}
	raw, err := ReadBody(resp.Body)
	if err != nil {
		res.Err = c.AnswerError(r.Op, resp.StatusCode, err)
		return res, nil
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		if raw == nil {
			raw = []byte{}
		}
		return res, raw
	}
	if code, msg, ok := c.cfg.DecodeError(raw); ok {
		res.Code, res.Message = code, msg
		return res, nil
	}
	// An error status without the gateway's error body: typically a proxy
	// or load balancer page. The classification falls back to the status.
	detail := ""
	if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		detail = fmt.Sprintf(", redirect to %q", c.Redact(loc))
	}
	res.Err = fmt.Errorf("error reading %s %s answer: HTTP %d without an error %s (content type %q%s, body %q)",
		c.cfg.Name, r.Op, resp.StatusCode, c.cfg.ErrorField, resp.Header.Get("Content-Type"), detail, c.snippet(raw))
	return res, nil
}

// AnswerError is the error of an answer that arrived but cannot be used.
func (c *Caller) AnswerError(op payment.Operation, status int, err error) error {
	return fmt.Errorf("error reading %s %s answer (HTTP %d): %w", c.cfg.Name, op, status, err)
}

// NotSent is the Result of a request the client refused to send
// (gateway.ErrNotSent): the gateway was never called.
func (c *Caller) NotSent(op payment.Operation, err error) gateway.Result {
	return NotSent(c.cfg.Name, op, err)
}

// NotSent is Caller.NotSent for a client that has no Caller at hand.
func NotSent(name string, op payment.Operation, err error) gateway.Result {
	return gateway.Result{Err: fmt.Errorf("error validating %s %s request: %w: %w", name, op, err, gateway.ErrNotSent)}
}

// ReadBody reads a whole response body, up to MaxBodyBytes.
func ReadBody(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("error reading body: %w", err)
	}
	if len(b) > MaxBodyBytes {
		return nil, ErrBodyTooLarge
	}
	return b, nil
}

// snippet returns the start of an unexpected body for an error message, with
// the credential removed first: a misbehaving proxy may echo request
// headers.
func (c *Caller) snippet(b []byte) string {
	s := c.Redact(string(b))
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "?")), " ")
	if len(s) > maxSnippetBytes {
		s = strings.ToValidUTF8(s[:maxSnippetBytes], "") + "…"
	}
	return s
}

// Redact removes the credential, in every form we send it, from s.
func (c *Caller) Redact(s string) string {
	for _, secret := range c.secrets {
		s = strings.ReplaceAll(s, secret, "[redacted]")
	}
	return s
}

// CheckBaseURL validates a base URL (empty means def) and returns it without
// a trailing slash, ready for a path to be appended.
func CheckBaseURL(raw, def string) (string, error) {
	if raw == "" {
		raw = def
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse quotes the input; a base URL is not secret.
		return "", fmt.Errorf("error parsing base URL: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("base URL %q: scheme must be http or https", raw)
	case u.Host == "":
		return "", fmt.Errorf("base URL %q: no host", raw)
	case u.User != nil:
		// Go would turn userinfo into its own Authorization header; ours
		// must be the only credential.
		return "", errors.New("base URL must not contain user information")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", fmt.Errorf("base URL %q: must not have a query or fragment", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// CheckSegment rejects a value that cannot be one path segment. PathEscape
// leaves "." and ".." as they are, and a server or proxy that cleans paths
// would resolve them to another endpoint.
func CheckSegment(name, v string) error {
	switch v {
	case "":
		return fmt.Errorf("%s is empty", name)
	case ".", "..":
		return fmt.Errorf("%s %q is not a valid path segment", name, v)
	}
	return nil
}

// VisibleASCII reports whether s is only visible ASCII (no space, control
// or non-ASCII byte): what a key or header value must be so that net/http
// neither refuses it (which would look like a transient failure, retried
// for ever) nor alters it on the way (which would silently break
// idempotency).
func VisibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
