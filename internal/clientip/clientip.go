// Package clientip decides, once per request and in one place, which
// address a request came from: for rate limits, the audit log, the
// session list and every other place that records a client's IP.
// LATCHKEY_TRUSTED_PROXIES names the reverse proxies whose
// X-Forwarded-For is believed; nothing else is.
package clientip

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

type ctxKey struct{}

// Middleware resolves the client's address of every request (Resolve,
// trusting the proxies in trusted) and keeps it in the request's context
// for From. Both listeners mount it, so every handler sees the same
// answer.
func Middleware(trusted []netip.Prefix) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := context.WithValue(r.Context(), ctxKey{}, Resolve(r, trusted))
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// From returns the client's address that Middleware resolved for r.
// Without the middleware (a handler under test) it is the connection's
// peer, trusting no proxy.
func From(r *http.Request) string {
	if ip, ok := r.Context().Value(ctxKey{}).(string); ok {
		return ip
	}
	return Resolve(r, nil)
}

// Resolve returns the client's IP.
//
// It is the host of r.RemoteAddr, unless that peer is in trusted: then
// X-Forwarded-For (all its header lines, in order) is read from the right,
// skipping addresses in trusted, and the right-most untrusted address is the
// client. Addresses left of it were written by the client and may be forged,
// so they are never used. If a hop is malformed, the last good address before
// it (a trusted proxy) is returned rather than anything the client could
// choose; if every hop is trusted, the left-most is returned.
//
// IPv4-mapped IPv6 addresses are returned as IPv4 and zones are dropped, so
// one client gets one key. If RemoteAddr is not an address (it always is for
// net/http servers on TCP), it is returned unchanged.
func Resolve(r *http.Request, trusted []netip.Prefix) string {
	peer, ok := parseHostAddr(r.RemoteAddr)
	if !ok {
		return r.RemoteAddr
	}
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	client := peer
	xff := r.Header.Values("X-Forwarded-For")
	for i := len(xff) - 1; i >= 0; i-- {
		hops := xff[i]
		for hops != "" {
			var hop string
			if j := strings.LastIndexByte(hops, ','); j >= 0 {
				hop, hops = hops[j+1:], hops[:j]
			} else {
				hop, hops = hops, ""
			}
			hop = strings.TrimSpace(hop)
			if hop == "" {
				continue // tolerate "a, , b" and a trailing comma
			}
			addr, ok := parseHostAddr(hop)
			if !ok {
				return client.String()
			}
			client = addr
			if !isTrusted(addr, trusted) {
				return addr.String()
			}
		}
	}
	return client.String()
}

// parseHostAddr parses "ip", "ip:port" or "[ipv6]:port", unmapping
// IPv4-in-IPv6 and dropping any zone.
func parseHostAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err2 := netip.ParseAddrPort(s)
		if err2 != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), true
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ParseTrustedProxies parses a comma-separated list of CIDRs ("10.0.0.0/8",
// "fd00::/8") or single IPs ("192.0.2.1", "::1"). Blank items are ignored, so
// "" yields an empty list (trust no proxy).
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if strings.Contains(item, "/") {
			p, err := netip.ParsePrefix(item)
			if err != nil {
				return nil, fmt.Errorf("clientip: invalid trusted proxy %q: %v", item, err)
			}
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil {
			return nil, fmt.Errorf("clientip: invalid trusted proxy %q: %v", item, err)
		}
		a = a.Unmap()
		if a.Zone() != "" {
			return nil, fmt.Errorf("clientip: invalid trusted proxy %q: zones are not supported", item)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
