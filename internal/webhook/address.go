package webhook

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"

	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// A webhook makes our relay send a request to a URL a client chose. Without
// a rule, a client could point it at the operator's own network: the
// database, a cloud metadata service (169.254.169.254), an admin port on
// loopback. So endpoint URLs are refused on such addresses when registered
// (CheckURL), and, because a name may resolve elsewhere by the time it is
// used, every connection the relay makes is checked again as it is dialled
// (Dialer).

// The special-purpose address blocks of IANA's IPv4 and IPv6
// Special-Purpose Address Registries (RFC 6890; docs/design.md, section 21,
// cites them). None is where a checkout's webhook receiver lives, the few
// the registries mark globally reachable included (anycast for PCP, TURN,
// AS112 and AMT), so every one is refused. Multicast, which has registries
// of its own, is refused as well.
var (
	specialIPv4 = prefixes(
		"0.0.0.0/8",       // "this network" (0.0.0.0/32 "this host" inside)
		"10.0.0.0/8",      // private use
		"100.64.0.0/10",   // shared address space (carrier-grade NAT)
		"127.0.0.0/8",     // loopback
		"169.254.0.0/16",  // link local (cloud metadata services live here)
		"172.16.0.0/12",   // private use
		"192.0.0.0/24",    // IETF protocol assignments (DS-Lite, PCP and TURN anycast, NAT64 discovery, ...)
		"192.0.2.0/24",    // documentation (TEST-NET-1)
		"192.31.196.0/24", // AS112-v4
		"192.52.193.0/24", // AMT
		"192.88.99.0/24",  // deprecated 6to4 relay anycast
		"192.168.0.0/16",  // private use
		"192.175.48.0/24", // direct delegation AS112 service
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // documentation (TEST-NET-2)
		"203.0.113.0/24",  // documentation (TEST-NET-3)
		"224.0.0.0/4",     // multicast
		"240.0.0.0/4",     // reserved (255.255.255.255/32, limited broadcast, inside)
	)
	specialIPv6 = prefixes(
		"::/128",            // unspecified
		"::1/128",           // loopback
		"100::/64",          // discard-only
		"100:0:0:1::/64",    // dummy IPv6 prefix
		"2001::/23",         // IETF protocol assignments (Teredo's 2001::/32 is judged apart, below)
		"2001:db8::/32",     // documentation
		"2620:4f:8000::/48", // direct delegation AS112 service
		"3fff::/20",         // documentation
		"5f00::/16",         // segment routing (SRv6) SIDs
		"fc00::/7",          // unique local
		"fe80::/10",         // link-local unicast
		"fec0::/10",         // deprecated site-local
		"ff00::/8",          // multicast
	)
	// globalUnicast is the only IPv6 block IANA allocates for global
	// unicast: whatever lies outside it is no public receiver either,
	// whether or not a registry has named it yet.
	globalUnicast = netip.MustParsePrefix("2000::/3")

	// The IPv6 forms that carry an IPv4 address: judged by that address.
	ipv4Compatible = netip.MustParsePrefix("::/96")          // deprecated IPv4-compatible (::a.b.c.d)
	nat64          = netip.MustParsePrefix("64:ff9b::/96")   // IPv4/IPv6 translation, well-known prefix
	nat64Local     = netip.MustParsePrefix("64:ff9b:1::/48") // IPv4/IPv6 translation, local use
	sixToFour      = netip.MustParsePrefix("2002::/16")      // 6to4: 2002:AABB:CCDD::/48
	teredo         = netip.MustParsePrefix("2001::/32")      // Teredo: server and obfuscated client
)

func prefixes(ss ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		ps[i] = netip.MustParsePrefix(s)
	}
	return ps
}

// Public reports whether ip is an address a webhook may be sent to: in no
// special-purpose block of IANA's registries, and, for an IPv6 address
// that carries an IPv4 one (IPv4-mapped and -compatible, NAT64, 6to4,
// Teredo), carrying only public IPv4 addresses. A DNS64 resolver in an
// IPv6-only cluster hands out 64:ff9b::a.b.c.d for every public receiver,
// so NAT64 addresses are judged by what they carry, not refused.
func Public(ip netip.Addr) bool {
	if !ip.IsValid() || ip.Zone() != "" {
		// A zone only qualifies link-local and other scoped addresses.
		return false
	}
	if ip.Is4In6() {
		return publicIPv4(ip.Unmap())
	}
	if ip.Is4() {
		return publicIPv4(ip)
	}
	if embedded, ok := embeddedIPv4(ip); ok {
		for _, v4 := range embedded {
			if !publicIPv4(v4) {
				return false
			}
		}
		return true
	}
	if !globalUnicast.Contains(ip) {
		return false
	}
	for _, p := range specialIPv6 {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

func publicIPv4(ip netip.Addr) bool {
	for _, p := range specialIPv4 {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// embeddedIPv4 returns the IPv4 addresses an IPv6 address of one of the
// forms that carry them holds, and whether it is of such a form.
func embeddedIPv4(ip netip.Addr) ([]netip.Addr, bool) {
	b := ip.As16()
	v4 := func(a, b, c, d byte) netip.Addr { return netip.AddrFrom4([4]byte{a, b, c, d}) }
	switch {
	case ipv4Compatible.Contains(ip):
		// ::/128 and ::1/128 are in here too; as 0.0.0.0 and 0.0.0.1 they
		// fall in 0.0.0.0/8 and are refused all the same.
		return []netip.Addr{v4(b[12], b[13], b[14], b[15])}, true
	case nat64.Contains(ip):
		return []netip.Addr{v4(b[12], b[13], b[14], b[15])}, true
	case nat64Local.Contains(ip):
		// RFC 6052's layout for a /48 prefix: the IPv4 address in bits
		// 48-63 and 72-87, around the reserved octet 64-71.
		return []netip.Addr{v4(b[6], b[7], b[9], b[10])}, true
	case sixToFour.Contains(ip):
		return []netip.Addr{v4(b[2], b[3], b[4], b[5])}, true
	case teredo.Contains(ip):
		// The Teredo server in bits 32-63, the client's public address
		// inverted in the last 32; traffic reaches either.
		return []netip.Addr{v4(b[4], b[5], b[6], b[7]), v4(^b[12], ^b[13], ^b[14], ^b[15])}, true
	}
	return nil, false
}

// Resolver looks a host name up; *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// CheckURL checks an endpoint URL: absolute https (or http when
// allowPrivate), a host, no user information or fragment, at most 2048
// bytes. Unless allowPrivate, every address the host has (an address
// literal, or what r resolves the name to) must be Public. Errors are
// domain errors for the client.
//
// https because a webhook carries a payment's status and amount, and its
// signature proves who sent it, not that nobody read or replayed it on the
// way; plain http is for a receiver on the developer's own machine, which
// is what allowPrivate is for.
func CheckURL(ctx context.Context, raw string, allowPrivate bool, r Resolver) error {
	invalid := func(format string, args ...any) error {
		return payment.Errorf(payment.KindInvalid, payment.CodeInvalidRequest, format, args...)
	}
	if raw == "" {
		return invalid("url is required")
	}
	if len(raw) > 2048 {
		return invalid("url must be at most 2048 bytes")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return invalid("url is not a URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return invalid("url must be an absolute https URL")
	}
	if u.Scheme == "http" && !allowPrivate {
		return invalid("url must be https: webhooks carry payment data, and plain http is accepted only in development (API_WEBHOOK_ALLOW_PRIVATE)")
	}
	if u.Hostname() == "" {
		return invalid("url must name a host")
	}
	if u.User != nil || u.Fragment != "" {
		return invalid("url must not carry user information or a fragment")
	}
	if allowPrivate {
		return nil
	}
	refused := func(what string) error {
		return payment.Errorf(payment.KindUnprocessable, CodeURLRefused,
			"url %s; webhooks are only sent to public addresses", what)
	}
	host := strings.TrimSuffix(u.Hostname(), ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		if !Public(ip) {
			return refused("is a loopback, private, link-local or other special-purpose address")
		}
		return nil
	}
	if !validHostName(host) {
		// "https://." once passed as a host and was resolved as the empty
		// name (the regression corpus of FuzzCheckURL keeps it).
		return invalid("url must name a host: an address, or a DNS name of letters, digits, hyphens and dots (an international name in its xn-- form)")
	}
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return refused("names localhost")
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return refused(fmt.Sprintf("has a host name that does not resolve (%s)", host))
	}
	for _, a := range addrs {
		if !Public(a) {
			return refused(fmt.Sprintf("has a host name that resolves to a loopback, private, link-local or other special-purpose address (%s)", a))
		}
	}
	return nil
}

// validHostName reports whether host is a DNS name a resolver can be
// asked for: at most 253 bytes of non-empty labels of at most 63 ASCII
// letters, digits, hyphens or underscores.
func validHostName(host string) bool {
	if host == "" || len(host) > 253 {
		return false
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// Dialer returns a dialer that refuses to connect to an address that is not
// Public, unless allowPrivate: the check at the moment of use, which a name
// that resolved to a public address at registration cannot get around.
func Dialer(allowPrivate bool) *net.Dialer {
	d := &net.Dialer{}
	if allowPrivate {
		return d
	}
	d.Control = func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("webhook: refusing to dial %s: %w", address, err)
		}
		if !Public(ap.Addr()) {
			return fmt.Errorf("webhook: refusing to dial %s: not a public address", address)
		}
		return nil
	}
	return d
}
