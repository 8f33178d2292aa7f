package httpcall

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
)

// TestReadBody: the body limit's error keeps its sentinel for errors.Is
// (moved from the Toss client's TestErrorsUnwrap with the code it tests).
func TestReadBody(t *testing.T) {
	t.Parallel()

	_, err := ReadBody(strings.NewReader(strings.Repeat("x", MaxBodyBytes+1)))
	require.ErrorIs(t, err, ErrBodyTooLarge)
	got, err := ReadBody(strings.NewReader(strings.Repeat("x", MaxBodyBytes)))
	require.NoError(t, err)
	require.Len(t, got, MaxBodyBytes)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// testConfig is a gateway whose key is written quoted and whose error body
// is {"kind": ...}, so the hooks are seen to be the client's.
func testConfig(hc *http.Client) Config {
	return Config{
		Name: "Test", BaseURL: "http://gw.test/api", Authorization: "Test s3cret", Timeout: time.Second,
		HTTPClient: hc, ErrorField: "kind",
		CheckKey: func(key string) error {
			if len(key) < 3 {
				return errors.New("key too short")
			}
			return nil
		},
		KeyHeader: strconv.Quote,
		DecodeError: func(raw []byte) (string, string, bool) {
			var b struct{ Kind, Message string }
			if json.Unmarshal(raw, &b) != nil || b.Kind == "" {
				return "", "", false
			}
			return b.Kind, b.Message, true
		},
	}
}

func TestDo(t *testing.T) {
	t.Parallel()

	t.Run("OneCallNotReplayable", func(t *testing.T) {
		t.Parallel()
		var seen *http.Request
		c, err := New(testConfig(&http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			seen = r
			return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(`{"ok":true}`)), Header: http.Header{}}, nil
		})}))
		require.NoError(t, err)
		res, raw := c.Do(context.Background(), Request{Op: "confirm", Method: http.MethodPost, Path: "/pay", Body: map[string]int{"a": 1}, IdempotencyKey: "key-1"})
		require.NoError(t, res.Err)
		require.Equal(t, 200, res.HTTPStatus)
		require.JSONEq(t, `{"ok":true}`, string(raw))
		require.Nil(t, seen.GetBody, "net/http must not be able to resend the request")
		require.Equal(t, `"key-1"`, seen.Header.Get("Idempotency-Key"), "the client's hook writes the key")
		require.Equal(t, "Test s3cret", seen.Header.Get("Authorization"))
		require.Equal(t, "http://gw.test/api/pay", seen.URL.String())
	})

	t.Run("KeyCheckedBeforeTheBody", func(t *testing.T) {
		t.Parallel()
		c, err := New(testConfig(&http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			t.Error("nothing may be sent")
			return nil, errors.New("sent")
		})}))
		require.NoError(t, err)
		// The body cannot be encoded either; the key is what is reported.
		res, raw := c.Do(context.Background(), Request{Op: "cancel", Method: http.MethodPost, Path: "/c", Body: func() {}})
		require.Nil(t, raw)
		require.ErrorIs(t, res.Err, gateway.ErrNotSent)
		require.ErrorContains(t, res.Err, "key too short")
	})

	t.Run("RedirectNotFollowedLocationReported", func(t *testing.T) {
		t.Parallel()
		var followed atomic.Int64
		target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { followed.Add(1) }))
		t.Cleanup(target.Close)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/?k=s3cret", http.StatusTemporaryRedirect)
		}))
		t.Cleanup(srv.Close)
		cfg := testConfig(nil)
		cfg.BaseURL = srv.URL
		c, err := New(cfg)
		require.NoError(t, err)
		res, raw := c.Do(context.Background(), Request{Op: "lookup", Method: http.MethodGet, Path: "/p"})
		require.Nil(t, raw)
		require.Equal(t, http.StatusTemporaryRedirect, res.HTTPStatus)
		require.ErrorContains(t, res.Err, "redirect to")
		require.ErrorContains(t, res.Err, target.URL)
		require.ErrorContains(t, res.Err, "without an error kind")
		require.NotContains(t, res.Err.Error(), "s3cret")
		require.Zero(t, followed.Load())
	})

	t.Run("ErrorBodyByTheHook", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusConflict)
			fmt.Fprint(w, `{"kind":"BUSY","message":"later"}`)
		}))
		t.Cleanup(srv.Close)
		cfg := testConfig(nil)
		cfg.BaseURL = srv.URL
		c, err := New(cfg)
		require.NoError(t, err)
		res, raw := c.Do(context.Background(), Request{Op: "lookup", Method: http.MethodGet, Path: "/p"})
		require.Nil(t, raw)
		require.NoError(t, res.Err)
		require.Equal(t, "BUSY", res.Code)
		require.Equal(t, "later", res.Message)
	})
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	for name, change := range map[string]func(*Config){
		"NoName":          func(c *Config) { c.Name = "" },
		"NoAuthorization": func(c *Config) { c.Authorization = "" },
		"NoKeyHook":       func(c *Config) { c.CheckKey = nil },
		"NoTimeout":       func(c *Config) { c.Timeout = 0 },
		"NegativeTimeout": func(c *Config) { c.Timeout = -time.Second },
		"BadBaseURL":      func(c *Config) { c.BaseURL = "ftp://gw.test" },
	} {
		cfg := testConfig(nil)
		change(&cfg)
		c, err := New(cfg)
		require.Error(t, err, name)
		require.Nil(t, c, name)
	}
}
