// Package egress is the policy for the outside services customerd calls
// (identity providers, gateways, a brand's endpoints): their URLs are
// configuration, and must be https, or http on a loopback host for local
// servers in tests.
package egress

import (
	"fmt"
	"net"
	"net/url"
)

// CheckURL accepts https URLs, and http ones on a loopback host.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not a URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if IsLoopback(u.Hostname()) {
			return nil
		}
	}
	return fmt.Errorf("%q is not an https URL", raw)
}

// IsLoopback reports whether host is localhost or a loopback address.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
