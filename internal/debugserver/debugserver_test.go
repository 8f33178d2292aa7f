package debugserver

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCheckAddr holds PPROF_ADDR to loopback hosts: an empty host (every
// interface), a public or private address, or a host name other than
// localhost is refused.
func TestCheckAddr(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"127.0.0.1:6060", "127.0.0.2:6060", "[::1]:6060", "localhost:6060", "127.0.0.1:0", "[::ffff:127.0.0.1]:6060"} {
		require.NoError(t, CheckAddr(ok), ok)
	}
	for _, bad := range []string{
		":6060", "0.0.0.0:6060", "[::]:6060", "10.0.0.7:6060", "192.168.1.2:6060", "203.0.113.9:6060",
		"example.com:6060", "localhost.example.com:6060", "[fe80::1%eth0]:6060", "[::1%lo]:6060",
		"127.0.0.1", "6060", "",
	} {
		require.Error(t, CheckAddr(bad), bad)
	}
}
