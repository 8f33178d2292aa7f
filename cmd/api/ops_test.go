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
		body: map[string]string{"reason": "checked the console", "decision": "resend", "cancelId": "c1"}}, cmd)

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
