package webhook_test

import (
	"context"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/webhook"
)

// TestPublicRefusesSpecialPurposeAddresses takes an address from every block
// of IANA's IPv4 and IPv6 Special-Purpose Address Registries and from the
// IPv6 forms that carry an IPv4 address: none is Public, and none can be
// dialled; the public addresses beside them are.
func TestPublicRefusesSpecialPurposeAddresses(t *testing.T) {
	t.Parallel()
	refused := []string{
		// IPv4 registry.
		"0.0.0.0", "0.1.2.3", "10.0.0.1", "100.64.0.1", "100.127.255.254", "127.0.0.1", "127.8.9.10",
		"169.254.169.254", "172.16.0.1", "172.31.255.255", "192.0.0.1", "192.0.0.9", "192.0.0.170",
		"192.0.2.1", "192.31.196.1", "192.52.193.1", "192.88.99.1", "192.168.1.1", "192.175.48.1",
		"198.18.0.1", "198.19.255.255", "198.51.100.1", "203.0.113.1", "224.0.0.1", "239.255.255.250",
		"240.0.0.1", "255.255.255.255",
		// IPv6 registry.
		"::", "::1", "100::1", "100:0:0:1::1", "2001:1::1", "2001:1::2", "2001:1::3", "2001:2::1",
		"2001:3::1", "2001:4:112::1", "2001:10::1", "2001:20::1", "2001:30::1", "2001:db8::1",
		"2620:4f:8000::1", "3fff::1", "5f00::1", "fc00::1", "fd12:3456::1", "fe80::1", "fec0::1",
		"ff02::1", "ff0e::1",
		// Outside the global unicast block altogether.
		"4000::1", "e000::1",
		// IPv4-mapped, IPv4-compatible, NAT64 (both prefixes), 6to4, Teredo,
		// each carrying a private, loopback or metadata address.
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
		"::127.0.0.1", "::10.0.0.1",
		"64:ff9b::127.0.0.1", "64:ff9b::169.254.169.254", "64:ff9b::10.0.0.1", "64:ff9b::192.168.0.1",
		"64:ff9b:1:a9fe:a9:fe00::", // local-use NAT64 /48 of 169.254.169.254 (RFC 6052 layout)
		"2002:7f00:1::1", "2002:a9fe:a9fe::", "2002:c0a8:101::1",
		"2001:0:a00:1::5db8:d70e",        // Teredo server 10.0.0.1
		"2001:0:5db8:d70e:0:0:80ff:fffe", // Teredo client 127.0.0.1 (inverted)
		"2001:0:5db8:d70e:0:0:5601:5601", // Teredo client 169.254.169.254 (inverted)
		"fe80::1%eth0", "2606:2800:220:1::1%eth0",
	}
	for _, s := range refused {
		ip := netip.MustParseAddr(s)
		require.False(t, webhook.Public(ip), s)
		if ip.Zone() == "" {
			_, err := webhook.Dialer(false).DialContext(t.Context(), "tcp", netip.AddrPortFrom(ip, 9).String())
			require.ErrorContains(t, err, "not a public address", s)
		}
	}
	accepted := []string{
		"93.184.215.14", "8.8.8.8", "1.1.1.1", "100.63.255.255", "100.128.0.1", "172.32.0.1", "192.0.1.1",
		"198.20.0.1", "223.255.255.255",
		"2606:2800:220:1:248:1893:25c8:1946", "2a00:1450:4001::1", "2001:4860:4860::8888",
		"::ffff:93.184.215.14", "64:ff9b::93.184.215.14", "64:ff9b:1:5db8:d7:e00::",
		"2002:5db8:d70e::1", "2001:0:5db8:d70e:0:0:f7f7:f7f7", // Teredo, server and client public
	}
	for _, s := range accepted {
		require.True(t, webhook.Public(netip.MustParseAddr(s)), s)
	}
	require.False(t, webhook.Public(netip.Addr{}))
}

// fixedResolver resolves every name to one address.
type fixedResolver netip.Addr

func (r fixedResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return []netip.Addr{netip.Addr(r)}, nil
}

// FuzzCheckURL holds the endpoint URL check to its promises whatever the
// client sends: it never panics; it refuses only with a domain error for
// the client; and a URL it accepts outside development is an absolute https
// URL of at most 2048 bytes, without user information or fragment, whose
// host is a public address or a name.
func FuzzCheckURL(f *testing.F) {
	for _, seed := range []string{
		"https://shop.example/hooks", "https://93.184.215.14:8443/x", "http://93.184.215.14/",
		"https://[64:ff9b::a9fe:a9fe]/", "https://[2002:a00:1::]/", "https://[::ffff:7f00:1]/",
		"https://[fe80::1%25eth0]/", "https://127.1/", "https://0x7f000001/", "https://2130706433/",
		"https://localhost./", "https://LOCALHOST/", "https://a.localhost/", "https://u@shop.example/",
		"https://shop.example/#frag", "HTTPS://SHOP.EXAMPLE/", "https:///x", "https://[::1/", "//shop.example/",
		"https://shop.example:99999/", "https://%31%32%37.0.0.1/", "javascript:alert(1)", "", " ",
	} {
		f.Add(seed, false)
	}
	public := fixedResolver(netip.MustParseAddr("93.184.215.14"))
	f.Fuzz(func(t *testing.T, raw string, private bool) {
		var r webhook.Resolver = public
		if private {
			r = fixedResolver(netip.MustParseAddr("10.0.0.7"))
		}
		err := webhook.CheckURL(context.Background(), raw, false, r)
		if err != nil {
			e := payment.ErrorOf(err)
			require.Contains(t, []string{payment.CodeInvalidRequest, webhook.CodeURLRefused}, e.Code, err.Error())
			require.Contains(t, []payment.Kind{payment.KindInvalid, payment.KindUnprocessable}, e.Kind)
			return
		}
		require.LessOrEqual(t, len(raw), 2048)
		u, perr := url.Parse(raw)
		require.NoError(t, perr)
		require.Equal(t, "https", u.Scheme, raw)
		require.Nil(t, u.User, raw)
		require.Empty(t, u.Fragment, raw)
		host := strings.TrimSuffix(u.Hostname(), ".")
		require.NotEmpty(t, host, raw)
		if ip, err := netip.ParseAddr(host); err == nil {
			require.True(t, webhook.Public(ip), raw)
		} else {
			require.False(t, private, "accepted %q, whose name resolves to a private address", raw)
		}
	})
}

// FuzzPublic holds Public to the rules whatever the address: what it
// accepts is none of what netip knows as non-public, and an IPv4 address
// is judged the same in each IPv6 form that carries it.
func FuzzPublic(f *testing.F) {
	for _, seed := range []string{"10.0.0.1", "93.184.215.14", "::1", "64:ff9b::a00:1", "2002:5db8:d70e::", "2001::1"} {
		b := netip.MustParseAddr(seed).As16()
		f.Add(b[:])
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ip, ok := netip.AddrFromSlice(raw)
		if !ok {
			return
		}
		if webhook.Public(ip) {
			u := ip.Unmap()
			require.False(t, u.IsLoopback() || u.IsPrivate() || u.IsLinkLocalUnicast() || u.IsMulticast() ||
				u.IsUnspecified() || u.IsInterfaceLocalMulticast() || u.IsLinkLocalMulticast(), ip.String())
		}
		if !ip.Is4() {
			return
		}
		v4 := ip.As4()
		want := webhook.Public(ip)
		mapped := netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: v4[0], 13: v4[1], 14: v4[2], 15: v4[3]})
		nat64 := netip.AddrFrom16([16]byte{0: 0x00, 1: 0x64, 2: 0xff, 3: 0x9b, 12: v4[0], 13: v4[1], 14: v4[2], 15: v4[3]})
		sixToFour := netip.AddrFrom16([16]byte{0: 0x20, 1: 0x02, 2: v4[0], 3: v4[1], 4: v4[2], 5: v4[3], 15: 1})
		teredoClient := netip.AddrFrom16([16]byte{0: 0x20, 1: 0x01, 4: 93, 5: 184, 6: 215, 7: 14,
			12: ^v4[0], 13: ^v4[1], 14: ^v4[2], 15: ^v4[3]})
		for _, form := range []netip.Addr{mapped, nat64, sixToFour, teredoClient} {
			require.Equal(t, want, webhook.Public(form), "%s carrying %s", form, ip)
		}
	})
}
