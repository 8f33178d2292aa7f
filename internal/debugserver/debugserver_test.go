package debugserver

import (
	"net"
	"net/netip"
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

// FuzzCheckAddr: whatever PPROF_ADDR says, an accepted one listens on a
// loopback host.
func FuzzCheckAddr(f *testing.F) {
	for _, seed := range []string{"127.0.0.1:6060", "[::1]:6060", "localhost:6060", ":6060", "0.0.0.0:6060",
		"[::ffff:127.0.0.1]:1", "[::ffff:10.0.0.1]:1", "127.1:6060", "LOCALHOST:1", "[fe80::1%lo]:1", "x:y:z"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		if CheckAddr(addr) != nil {
			return
		}
		host, _, err := net.SplitHostPort(addr)
		require.NoError(t, err)
		if host == "localhost" {
			return
		}
		ip, err := netip.ParseAddr(host)
		require.NoError(t, err, "accepted host %q", host)
		require.True(t, ip.Unmap().IsLoopback(), "accepted %q", addr)
		require.Empty(t, ip.Zone())
	})
}
