package clientip

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// FuzzParseTrustedProxies: every prefix is valid, masked, without zone,
// IPv4 as IPv4; the list formats back to itself.
func FuzzParseTrustedProxies(f *testing.F) {
	for _, s := range []string{"", "10.0.0.0/8", "fd00::/8, 192.0.2.1", "::1", "10.0.0.1/8", "::ffff:10.0.0.0/104",
		"::ffff:10.0.0.1", "fe80::1%eth0", "fe80::1%eth0/64", "10.0.0.0/99", ",,", "1.2.3.4/32,", "300.0.0.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := ParseTrustedProxies(s)
		if err != nil {
			return
		}
		texts := make([]string, len(ps))
		for i, p := range ps {
			if !p.IsValid() || p != p.Masked() || p.Addr().Zone() != "" || (p.Addr().Is4In6() && p.Bits() >= 96) {
				t.Fatalf("ParseTrustedProxies(%q)[%d] = %v", s, i, p)
			}
			texts[i] = p.String()
		}
		back, err := ParseTrustedProxies(strings.Join(texts, ","))
		if err != nil || len(back) != len(ps) {
			t.Fatalf("%q: %v re-parsed as %v, %v", s, ps, back, err)
		}
		for i := range ps {
			if back[i] != ps[i] {
				t.Fatalf("%q: %v re-parsed as %v", s, ps, back)
			}
		}
	})
}

// FuzzClientIP: the client address behind trusted proxies is always an
// address (no zone, IPv4 unmapped): the peer's when it is not trusted,
// otherwise the peer or one of the X-Forwarded-For hops.
func FuzzClientIP(f *testing.F) {
	for _, s := range []struct{ remote, xff, trusted string }{
		{"203.0.113.9:1234", "", ""},
		{"10.0.0.1:1234", "198.51.100.7, 10.0.0.2", "10.0.0.0/8"},
		{"10.0.0.1:1234", "evil, 198.51.100.7", "10.0.0.0/8"},
		{"10.0.0.1:1234", "198.51.100.7,,", "10.0.0.0/8"},
		{"[::ffff:10.0.0.1]:1", "[2001:db8::1]:443", "10.0.0.0/8"},
		{"[fe80::1%eth0]:1", "fe80::2%eth1", "fe80::/10"},
		{"not an address", "198.51.100.7", "0.0.0.0/0"},
		{"10.0.0.1:1", "10.0.0.2, 10.0.0.3", "10.0.0.0/8"},
	} {
		f.Add(s.remote, s.xff, s.trusted)
	}
	f.Fuzz(func(t *testing.T, remote, xff, trustedList string) {
		trusted, err := ParseTrustedProxies(trustedList)
		if err != nil {
			return
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		for _, line := range strings.Split(xff, "\n") {
			r.Header.Add("X-Forwarded-For", line)
		}
		got := Resolve(r, trusted)
		peer, ok := parseHostAddr(remote)
		if !ok {
			if got != remote {
				t.Fatalf("Resolve(%q) = %q", remote, got)
			}
			return
		}
		a, err := netip.ParseAddr(got)
		if err != nil || a.Zone() != "" || a.Is4In6() {
			t.Fatalf("ClientIP = %q, not a plain address", got)
		}
		if !isTrusted(peer, trusted) {
			if a != peer {
				t.Fatalf("untrusted peer %v, ClientIP %v", peer, a)
			}
			return
		}
		if a == peer {
			return
		}
		for _, hop := range strings.FieldsFunc(xff, func(r rune) bool { return r == ',' || r == '\n' }) {
			if h, ok := parseHostAddr(strings.TrimSpace(hop)); ok && h == a {
				return
			}
		}
		t.Fatalf("ClientIP = %v: neither the peer %v nor a hop of %q", a, peer, xff)
	})
}
