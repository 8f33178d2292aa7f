package webhook_test

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/webhook"
)

// TestSignSpecVector: the signature of the Standard Webhooks specification's
// published example.
func TestSignSpecVector(t *testing.T) {
	t.Parallel()
	sig, err := webhook.Sign([]string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, "msg_p5jXN8AQM9LWM0D4loKWxJek",
		time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	require.NoError(t, err)
	require.Equal(t, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", sig)
}

// TestSignDuringRotation: while an old secret still signs, a receiver
// holding either one accepts the delivery.
func TestSignDuringRotation(t *testing.T) {
	t.Parallel()
	old, err := webhook.NewSecret()
	require.NoError(t, err)
	current, err := webhook.NewSecret()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(current, "whsec_"))
	require.NotEqual(t, old, current)

	now := time.Now()
	expires := now.Add(time.Hour)
	e := webhook.Endpoint{Secret: current, PreviousSecret: old, PreviousSecretExpiresAt: &expires}
	require.Equal(t, []string{current, old}, e.SigningSecrets(now))
	require.Equal(t, []string{current}, e.SigningSecrets(expires), "expired: the old secret no longer signs")

	body := []byte(`{"type":"payment.confirmed"}`)
	sig, err := webhook.Sign(e.SigningSecrets(now), "evt_1", now, body)
	require.NoError(t, err)
	h := http.Header{}
	h.Set(webhook.HeaderID, "evt_1")
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(webhook.HeaderSignature, sig)
	for _, secret := range []string{old, current} {
		wh, err := standardwebhooks.NewWebhook(secret)
		require.NoError(t, err)
		require.NoError(t, wh.Verify(body, h))
	}
	stranger, err := webhook.NewSecret()
	require.NoError(t, err)
	wh, err := standardwebhooks.NewWebhook(stranger)
	require.NoError(t, err)
	require.Error(t, wh.Verify(body, h))
}

func TestEventTypes(t *testing.T) {
	t.Parallel()
	types := webhook.EventTypes()
	require.Len(t, types, len(payment.Statuses())-1)
	require.Contains(t, types, "payment.confirmed")
	require.NotContains(t, types, "payment.ready", "no change enters ready")
	require.True(t, webhook.ValidEventType("payment.partially_canceled"))
	require.False(t, webhook.ValidEventType("payment.*"))
}

// resolver answers from a table.
type resolver map[string][]netip.Addr

func (r resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	r := resolver{
		"shop.example":     {netip.MustParseAddr("93.184.215.14")},
		"internal.example": {netip.MustParseAddr("93.184.215.14"), netip.MustParseAddr("10.0.0.7")},
		"nat64.example":    {netip.MustParseAddr("64:ff9b::a00:7")},
	}
	ctx := context.Background()
	for _, tt := range []struct {
		url  string
		code string // "" accepted
	}{
		{"https://shop.example/hooks/payments", ""},
		{"https://93.184.215.14:8443/hooks", ""},
		{"https://[2606:2800:220:1:248:1893:25c8:1946]/hooks", ""},
		{"http://93.184.215.14:8443/hooks", payment.CodeInvalidRequest}, // plain http outside development
		{"http://shop.example/hooks", payment.CodeInvalidRequest},
		{"", payment.CodeInvalidRequest},
		{"ftp://shop.example/", payment.CodeInvalidRequest},
		{"/relative", payment.CodeInvalidRequest},
		{"https://user:pw@shop.example/", payment.CodeInvalidRequest},
		{"https://127.0.0.1:8080/", webhook.CodeURLRefused},
		{"https://[::1]/", webhook.CodeURLRefused},
		{"https://10.1.2.3/", webhook.CodeURLRefused},
		{"https://192.168.1.1/", webhook.CodeURLRefused},
		{"https://169.254.169.254/latest/meta-data", webhook.CodeURLRefused},
		{"https://[fe80::1]/", webhook.CodeURLRefused},
		{"https://[fe80::1%25eth0]/", webhook.CodeURLRefused},
		{"https://[::ffff:127.0.0.1]/", webhook.CodeURLRefused},
		{"https://100.64.0.1/", webhook.CodeURLRefused},
		{"https://localhost:3000/", webhook.CodeURLRefused},
		{"https://internal.example/", webhook.CodeURLRefused},
		{"https://nowhere.example/", webhook.CodeURLRefused},
		// IPv6 forms that carry an IPv4 address, and a name resolving to one.
		{"https://[64:ff9b::a9fe:a9fe]/", webhook.CodeURLRefused}, // NAT64 of 169.254.169.254
		{"https://[64:ff9b::7f00:1]/", webhook.CodeURLRefused},    // NAT64 of 127.0.0.1
		{"https://[2002:a00:1::]/", webhook.CodeURLRefused},       // 6to4 of 10.0.0.1
		{"https://[::a00:1]/", webhook.CodeURLRefused},            // IPv4-compatible 10.0.0.1
		{"https://nat64.example/", webhook.CodeURLRefused},
		{"https://[64:ff9b::5db8:d70e]/", ""}, // NAT64 of the public 93.184.215.14 (DNS64)
	} {
		err := webhook.CheckURL(ctx, tt.url, false, r)
		if tt.code == "" {
			require.NoError(t, err, tt.url)
			continue
		}
		require.Error(t, err, tt.url)
		require.Equal(t, tt.code, payment.ErrorOf(err).Code, tt.url)
	}
	// Allowed for development: only the form is checked.
	require.NoError(t, webhook.CheckURL(ctx, "http://127.0.0.1:8080/", true, r))
	require.NoError(t, webhook.CheckURL(ctx, "http://host.docker.internal:9000/", true, r))
	require.Error(t, webhook.CheckURL(ctx, "ftp://127.0.0.1/", true, r))
}

func TestDialerRefusesPrivateAddresses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, err := webhook.Dialer(false).DialContext(ctx, "tcp", "127.0.0.1:9")
	require.ErrorContains(t, err, "not a public address")
	_, err = webhook.Dialer(false).DialContext(ctx, "tcp", "[::1]:9")
	require.ErrorContains(t, err, "not a public address")
	_, err = webhook.Dialer(true).DialContext(ctx, "tcp", "127.0.0.1:9")
	require.NotContains(t, errString(err), "not a public address")
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
