// Package egress is how customerd calls the outside services its
// configuration names (identity providers, the Graph API, SMS gateways, a
// brand's endpoints, webhook receivers, SMTP relays). Every such call goes
// through one client that follows no redirect, ignores proxies from the
// environment, requires https, and refuses at dial time, once the name is
// resolved, any address inside a private network (loopback, RFC 1918,
// link-local with the cloud metadata service, CGNAT, unique local IPv6,
// unspecified, multicast, broadcast, and their IPv4-mapped forms). A service
// configured with allowPrivateNetwork: true may be reached on such an
// address, and in plain text (http, SMTP without TLS) there only (local
// relays, tests).
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Setting is the configuration key, on each outside service's block, that
// lets it live in a private network.
const Setting = "allowPrivateNetwork"

// ErrRefused: the call would leave customerd for a place the policy forbids.
var ErrRefused = errors.New("refused by the outbound call policy")

// Options are one outside service's policy.
type Options struct {
	// AllowPrivateNetwork lets the service be on a private, loopback or
	// link-local address, and be called over plain http there.
	AllowPrivateNetwork bool
	// Timeout bounds one call, answer included; none when zero.
	Timeout time.Duration
	// Resolver resolves host names; the system's when nil (tests point it
	// at a local DNS server).
	Resolver *net.Resolver
}

// CheckURL is the start-up check of a configured URL: https, or http with
// AllowPrivateNetwork to a host that is not a public address; a literal
// private address or localhost needs AllowPrivateNetwork. Names are checked
// again, resolved, at every dial.
func CheckURL(raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		// Not quoted: what does not parse may still hold a password.
		return errors.New("is not a URL (scheme://host/path)")
	}
	shown := Where(u)
	if u.User != nil {
		// Go's client would send them as Basic authentication, and the URL
		// is a setting, shown and stored as it is: a credential belongs in
		// the block's secret.
		return fmt.Errorf("%q carries credentials (user:password@): put none in a URL", shown)
	}
	switch u.Scheme {
	case "https":
		return CheckHost(u.Hostname(), allowPrivate)
	case "http":
		if err := CheckPlainHost(u.Hostname(), allowPrivate); err != nil {
			return fmt.Errorf("%q is not https: %w", shown, err)
		}
		return nil
	}
	return fmt.Errorf("%q is not an https URL", shown)
}

// CheckPlainHost is the start-up check of a host called in plain text
// (http, SMTP without TLS): only a service that says it is in a private
// network (AllowPrivateNetwork) may be, and a literal public address is
// refused even then; a name is judged, resolved, at every dial (NewClient's
// plain transport, DialPlainContext).
func CheckPlainHost(host string, allowPrivate bool) error {
	if err := checkNumeric(host); err != nil {
		return err
	}
	if !allowPrivate {
		return fmt.Errorf("plain text goes only to a private network, with %s: true", Setting)
	}
	if ip, literal := literalAddr(host); literal && classify(ip) == public {
		return fmt.Errorf("%s is a public address: plain text goes only to a private network", ip)
	}
	return nil
}

// CheckHost is the start-up check of a configured host name or address: a
// literal private address or localhost needs AllowPrivateNetwork.
func CheckHost(host string, allowPrivate bool) error {
	if err := checkNumeric(host); err != nil {
		return err
	}
	if allowPrivate {
		return nil
	}
	if ip, literal := literalAddr(host); literal && classify(ip) != public || strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return fmt.Errorf("%q is in a private network (loopback, private, link-local or reserved address): set %s: true if it is meant to be", host, Setting)
	}
	return nil
}

// IsLoopback reports whether host is localhost or a loopback address.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, ok := literalAddr(host)
	return ok && ip.IsLoopback()
}

// checkNumeric refuses a host that ends in a number but is no address as
// written (127.1, 2130706433, 0x7f000001, 0177.0.0.1, 169.254.169.254.):
// browsers, curl and C's resolver read it as an IPv4 address, which the
// start-up check would not see. No public name ends in a number, so such a
// host is an address in another spelling, to be written as one.
func checkNumeric(host string) error {
	if _, literal := literalAddr(host); literal {
		return nil
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	last := strings.ToLower(labels[len(labels)-1])
	hex := strings.TrimPrefix(last, "0x")
	numeric := last != "" && strings.Trim(last, "0123456789") == "" ||
		len(hex) < len(last) && strings.Trim(hex, "0123456789abcdef") == ""
	if numeric {
		return fmt.Errorf("%q ends in a number and is read as an IPv4 address: write the address as four decimal numbers (a.b.c.d)", host)
	}
	return nil
}

func literalAddr(host string) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return ip.Unmap().WithZone(""), true
}

// NewClient is the HTTP client for one outside service. It follows no
// redirect (a 3xx is the answer), uses no proxy (a proxy would connect past
// the dial check), and sends https through a dialer that refuses private
// addresses unless o allows them, and plain http, when o allows private
// networks, through one that refuses public addresses.
func NewClient(o Options) *http.Client {
	rt := &roundTripper{secure: o.transport(false)}
	if o.AllowPrivateNetwork {
		rt.plain = o.transport(true)
	}
	return &http.Client{
		Transport: rt,
		Timeout:   o.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect is an answer, not a hop: it lands as a 3xx
		},
	}
}

// DialContext connects to address ("host:port") under o's policy, for
// protocols other than HTTP (SMTP) that speak TLS on the connection.
func (o Options) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return o.dialer(false).DialContext(ctx, network, address)
}

// DialPlainContext is DialContext for a connection that stays in plain
// text (SMTP without TLS): as plain http, it goes to a private network
// only, when o allows one, and never to a public address.
func (o Options) DialPlainContext(ctx context.Context, network, address string) (net.Conn, error) {
	return o.dialer(true).DialContext(ctx, network, address)
}

func (o Options) dialer(plain bool) *net.Dialer {
	return &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		Resolver:  o.Resolver,
		Control: func(_, address string, _ syscall.RawConn) error {
			return o.allows(address, plain)
		},
	}
}

// allows judges the resolved address a connection is about to be made to.
func (o Options) allows(address string, plain bool) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot judge address %q", ErrRefused, address)
	}
	ip := ap.Addr().Unmap().WithZone("")
	switch c := classify(ip); {
	case c == never:
		return fmt.Errorf("%w: %s is not an address to call", ErrRefused, ip)
	case c == internal && !o.AllowPrivateNetwork:
		return fmt.Errorf("%w: %s is in a private network and %s is not set", ErrRefused, ip, Setting)
	case c == public && plain:
		return fmt.Errorf("%w: plain text to public address %s", ErrRefused, ip)
	}
	return nil
}

func (o Options) transport(plain bool) *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // HTTPS_PROXY and friends are ignored on purpose
		DialContext:           o.dialer(plain).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// roundTripper sends https through secure and http through plain (nil when
// plain http is not allowed).
type roundTripper struct {
	secure, plain *http.Transport
}

func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	switch {
	case req.URL.Scheme == "https":
		return rt.secure.RoundTrip(req)
	case req.URL.Scheme == "http" && rt.plain != nil:
		return rt.plain.RoundTrip(req)
	}
	if req.Body != nil {
		_ = req.Body.Close()
	}
	return nil, fmt.Errorf("%w: %s is not https", ErrRefused, Where(req.URL))
}

// Where is u as a message names it (config check, start-up, the admin API's
// answers, a failed call's log line and an event's last error): scheme, host
// and path, never its user information, query or fragment, where a
// credential may ride (a token as the user name, an api_key parameter);
// Redacted hides a password only.
func Where(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// class is where an address is, for the policy.
type class int

const (
	public   class = iota
	internal       // reachable only with AllowPrivateNetwork
	never          // never called: unspecified, multicast, broadcast, reserved
)

var (
	internalPrefixes = prefixes(
		"127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", // loopback, RFC 1918
		"169.254.0.0/16", "100.64.0.0/10", // link-local (cloud metadata), CGNAT
		"198.18.0.0/15",                    // network benchmarking, used inside networks
		"::1/128", "fc00::/7", "fe80::/10", // loopback, unique local, link-local
		"fec0::/10",      // site-local: deprecated (RFC 3879), still routed inside networks that kept it
		"64:ff9b:1::/48", // NAT64 for a local network's own translators
	)
	neverPrefixes = prefixes(
		"0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4", // this network, multicast, reserved and broadcast
		"192.0.0.0/24", "192.88.99.0/24", // protocol assignments, the 6to4 relay anycast (deprecated)
		"::/128", "ff00::/8", "::/96", // unspecified, multicast, IPv4-compatible (deprecated)
		"2001::/32", // Teredo: an IPv4 client behind a relay
	)
	nat64  = netip.MustParsePrefix("64:ff9b::/96") // carries an IPv4 address to a NAT64 gateway
	sixTo4 = netip.MustParsePrefix("2002::/16")    // 6to4: an IPv4 address in bits 16 to 47
)

func prefixes(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, p := range s {
		out[i] = netip.MustParsePrefix(p)
	}
	return out
}

// classify places ip (already unmapped from ::ffff:0:0/96).
func classify(ip netip.Addr) class {
	switch b := ip.As16(); {
	case nat64.Contains(ip):
		ip = netip.AddrFrom4([4]byte(b[12:]))
	case sixTo4.Contains(ip):
		ip = netip.AddrFrom4([4]byte(b[2:6]))
	}
	for _, p := range internalPrefixes {
		if p.Contains(ip) {
			return internal
		}
	}
	for _, p := range neverPrefixes {
		if p.Contains(ip) {
			return never
		}
	}
	return public
}
