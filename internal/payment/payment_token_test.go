package payment

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParsePortOneConfirmMode(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]PortOneConfirmMode{"": PortOneConfirmBrowser, "browser": PortOneConfirmBrowser, "manual": PortOneConfirmManual} {
		got, err := ParsePortOneConfirmMode(v)
		require.NoError(t, err, v)
		require.Equal(t, want, got, v)
	}
	for _, v := range []string{"Manual", "auto", " manual"} {
		_, err := ParsePortOneConfirmMode(v)
		require.ErrorContains(t, err, "PORTONE_CONFIRM_MODE must be browser or manual", v)
	}
}

func TestTokenIsNeverShown(t *testing.T) {
	t.Parallel()
	const secret = "ptok_secret_0123"
	p := Payment{ID: "p1", PaymentToken: secret}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("payment", slog.Any("token", p.PaymentToken), slog.Any("payment", p))
	encoded, err := json.Marshal(p)
	require.NoError(t, err)
	for _, out := range []string{fmt.Sprintf("%v %+v %#v %s", p, p, p, p.PaymentToken), logged.String(), string(encoded)} {
		require.NotContains(t, out, secret)
	}
	require.Equal(t, secret, p.PaymentToken.Reveal())
	require.Empty(t, Token("").String())
}

func TestCheckPaymentToken(t *testing.T) {
	t.Parallel()
	toss, portOne := Payment{Gateway: GatewayToss}, Payment{Gateway: GatewayPortOne}
	for _, tt := range []struct {
		name  string
		p     Payment
		mode  PortOneConfirmMode
		token string
		ok    bool
	}{
		{"PortOneManualWithToken", portOne, PortOneConfirmManual, "t", true},
		{"PortOneManualWithout", portOne, PortOneConfirmManual, "", false},
		{"PortOneBrowserWithout", portOne, PortOneConfirmBrowser, "", true},
		{"PortOneBrowserWithToken", portOne, PortOneConfirmBrowser, "t", false},
		{"TossManualWithout", toss, PortOneConfirmManual, "", true},
		{"TossManualWithToken", toss, PortOneConfirmManual, "t", false},
		{"TossBrowserWithToken", toss, PortOneConfirmBrowser, "t", false},
	} {
		err := tt.p.CheckPaymentToken(tt.mode, tt.token)
		if tt.ok {
			require.NoError(t, err, tt.name)
			continue
		}
		require.Equal(t, KindInvalid, ErrorOf(err).Kind, tt.name)
	}
}

func TestForgetSpentToken(t *testing.T) {
	t.Parallel()
	now := time.Now()
	for _, tt := range []struct {
		status   Status
		approved *time.Time
		kept     bool
	}{
		{StatusConfirming, nil, true},
		{StatusUnknown, nil, true}, // a confirm that spent its budget may run again
		{StatusUnknown, &now, false},
		{StatusConfirmed, &now, false},
		{StatusFailed, nil, false},
		{StatusExpired, nil, false},
		{StatusCanceling, &now, false},
		{StatusCanceled, nil, false},
	} {
		p := Payment{Status: tt.status, ApprovedAt: tt.approved, PaymentToken: "t"}
		p.ForgetSpentToken()
		require.Equal(t, tt.kept, p.PaymentToken != "", "%s approved=%v", tt.status, tt.approved != nil)
	}
}
