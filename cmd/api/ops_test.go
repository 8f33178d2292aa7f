package main

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseOpsSettleCancel(t *testing.T) {
	t.Parallel()
	cmd, err := parseOpsArgs([]string{"settle-cancel", "p1", "--decision", "resend", "--reason", "checked the console", "--cancel=c1"})
	require.NoError(t, err)
	require.Equal(t, opsCommand{method: http.MethodPost, path: "payments/p1/settle-cancel",
		body: map[string]any{"reason": "checked the console", "decision": "resend", "cancelId": "c1"}}, cmd)

	for name, args := range map[string][]string{
		"no decision":             {"settle-cancel", "p1", "--reason", "x"},
		"decision on another one": {"resolve", "p1", "--decision", "done", "--reason", "x"},
		"no reason":               {"settle-cancel", "p1", "--decision", "done"},
	} {
		_, err := parseOpsArgs(args)
		var usage *usageError
		require.ErrorAs(t, err, &usage, name)
	}
}

func TestParseOpsRefundAccount(t *testing.T) {
	t.Parallel()
	cmd, err := parseOpsArgs([]string{"refund-account", "p1", "--bank", "88", "--account=11012345678", "--holder", "김토스", "--reason", "customer gave it by phone"})
	require.NoError(t, err)
	require.Equal(t, opsCommand{method: http.MethodPost, path: "payments/p1/refund-account",
		body: map[string]any{"reason": "customer gave it by phone",
			"refundReceiveAccount": map[string]string{"bank": "88", "accountNumber": "11012345678", "holderName": "김토스"}}}, cmd)

	for name, args := range map[string][]string{
		"no account":             {"refund-account", "p1", "--reason", "x"},
		"half an account":        {"refund-account", "p1", "--bank", "88", "--reason", "x"},
		"account on another one": {"resend-cancel", "p1", "--bank", "88", "--account", "1", "--holder", "h", "--reason", "x"},
	} {
		_, err := parseOpsArgs(args)
		var usage *usageError
		require.ErrorAs(t, err, &usage, name)
	}
}
