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

// nonPublic are the prefixes, beyond what netip's predicates cover, that no
// public webhook receiver lives on.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),     // "this network"
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT, shared address space
	netip.MustParsePrefix("192.0.0.0/24"),  // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("64:ff9b:1::/48"),
}

// Public reports whether ip is an address a webhook may be sent to: not
// loopback, private, link-local, multicast or unspecified.
func Public(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() ||
		ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// Resolver looks a host name up; *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// CheckURL checks an endpoint URL: absolute http or https, a host, no user
// information or fragment, at most 2048 bytes. Unless allowPrivate, every
// address the host has (an address literal, or what r resolves the name to)
// must be Public. Errors are domain errors for the client.
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
		return invalid("url must be an absolute http or https URL")
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
			return refused("is a loopback, private or link-local address")
		}
		return nil
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
			return refused(fmt.Sprintf("has a host name that resolves to a loopback, private or link-local address (%s)", a))
		}
	}
	return nil
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
