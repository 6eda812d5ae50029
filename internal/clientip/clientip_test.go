package clientip

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	trusted, err := ParseTrustedProxies("10.0.0.0/8, 192.0.2.1, fd00::/8")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		remote  string
		xff     []string // X-Forwarded-For header lines
		trusted []netip.Prefix
		want    string
	}{
		{name: "no proxy", remote: "203.0.113.9:54321", want: "203.0.113.9"},
		{name: "no proxy configured ignores XFF", remote: "203.0.113.9:54321", xff: []string{"1.2.3.4"}, want: "203.0.113.9"},
		{name: "untrusted peer with spoofed XFF", remote: "203.0.113.9:54321", xff: []string{"1.2.3.4"}, trusted: trusted, want: "203.0.113.9"},
		{name: "trusted peer without XFF", remote: "10.1.2.3:80", trusted: trusted, want: "10.1.2.3"},
		{name: "trusted proxy, one hop", remote: "10.1.2.3:80", xff: []string{"198.51.100.7"}, trusted: trusted, want: "198.51.100.7"},
		{
			name:   "trusted proxy chain",
			remote: "10.1.2.3:80", xff: []string{"198.51.100.7, 10.9.9.9, 192.0.2.1"},
			trusted: trusted, want: "198.51.100.7",
		},
		{
			name:   "client-forged entries left of the real client are ignored",
			remote: "10.1.2.3:80", xff: []string{"6.6.6.6, 10.0.0.1, 198.51.100.7, 10.9.9.9"},
			trusted: trusted, want: "198.51.100.7",
		},
		{
			name:   "multiple XFF header lines read as one list",
			remote: "10.1.2.3:80", xff: []string{"6.6.6.6, 198.51.100.7", "10.9.9.9"},
			trusted: trusted, want: "198.51.100.7",
		},
		{
			name:   "all hops trusted: left-most",
			remote: "10.1.2.3:80", xff: []string{"10.0.0.5, 192.0.2.1"},
			trusted: trusted, want: "10.0.0.5",
		},
		{
			name:   "malformed hop: last trusted address before it",
			remote: "10.1.2.3:80", xff: []string{"198.51.100.7, garbage, 10.9.9.9"},
			trusted: trusted, want: "10.9.9.9",
		},
		{
			name:   "malformed right-most hop: the peer",
			remote: "10.1.2.3:80", xff: []string{"198.51.100.7, not-an-ip"},
			trusted: trusted, want: "10.1.2.3",
		},
		{
			name:   "empty items and spaces tolerated",
			remote: "10.1.2.3:80", xff: []string{" 198.51.100.7 ,, 10.9.9.9 ,"},
			trusted: trusted, want: "198.51.100.7",
		},
		{
			name:   "hop with port",
			remote: "10.1.2.3:80", xff: []string{"198.51.100.7:4711"},
			trusted: trusted, want: "198.51.100.7",
		},
		{name: "IPv6 peer", remote: "[2001:db8::1]:443", want: "2001:db8::1"},
		{name: "IPv6 peer with zone", remote: "[fe80::1%eth0]:443", want: "fe80::1"},
		{name: "IPv4-mapped IPv6 peer", remote: "[::ffff:203.0.113.9]:443", want: "203.0.113.9"},
		{
			name:   "IPv6 trusted proxy, IPv6 client",
			remote: "[fd00::5]:80", xff: []string{"2001:db8::42"},
			trusted: trusted, want: "2001:db8::42",
		},
		{
			name:   "IPv6 client behind IPv4 proxy, bracketed with port",
			remote: "10.1.2.3:80", xff: []string{"[2001:db8::42]:1234"},
			trusted: trusted, want: "2001:db8::42",
		},
		{
			name:   "IPv4-mapped trusted peer matches IPv4 prefix",
			remote: "[::ffff:10.1.2.3]:80", xff: []string{"198.51.100.7"},
			trusted: trusted, want: "198.51.100.7",
		},
		{name: "RemoteAddr without port", remote: "203.0.113.9", want: "203.0.113.9"},
		{name: "malformed RemoteAddr returned as is", remote: "bogus", xff: []string{"1.2.3.4"}, trusted: trusted, want: "bogus"},
		{name: "empty RemoteAddr", remote: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/login", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := Resolve(r, tt.trusted); got != tt.want {
				t.Errorf("Resolve(RemoteAddr=%q, XFF=%q) = %q, want %q", tt.remote, tt.xff, got, tt.want)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "", want: nil},
		{in: " , ", want: nil},
		{in: "10.0.0.0/8", want: []string{"10.0.0.0/8"}},
		{in: "10.0.0.0/8,172.16.0.0/12, 192.168.0.0/16", want: []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}},
		{in: "192.0.2.1", want: []string{"192.0.2.1/32"}},
		{in: "::1, fd00::/8", want: []string{"::1/128", "fd00::/8"}},
		{in: "10.1.2.3/8", want: []string{"10.0.0.0/8"}}, // masked
		{in: "::ffff:10.0.0.1", want: []string{"10.0.0.1/32"}},
		{in: "::ffff:10.0.0.0/104", want: []string{"10.0.0.0/8"}},
		{in: "10.0.0.0/33", wantErr: `"10.0.0.0/33"`},
		{in: "10.0.0.0/8, nope", wantErr: `"nope"`},
		{in: "10.0.0.1:80", wantErr: `"10.0.0.1:80"`},
		{in: "fe80::1%eth0", wantErr: "zones"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTrustedProxies(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseTrustedProxies(%q) = %v, %v; want error containing %s", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var gotS []string
			for _, p := range got {
				gotS = append(gotS, p.String())
			}
			if !slices.Equal(gotS, tt.want) {
				t.Errorf("ParseTrustedProxies(%q) = %v, want %v", tt.in, gotS, tt.want)
			}
		})
	}
}

// Every handler behind the middleware reads the one resolved address;
// without it, From trusts no forwarding header.
func TestMiddlewareAndFrom(t *testing.T) {
	trusted, err := ParseTrustedProxies("10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.1.2.3:443"
	r.Header.Set("X-Forwarded-For", "198.51.100.7")
	if got := From(r); got != "10.1.2.3" {
		t.Fatalf("From without the middleware = %q, want the peer", got)
	}
	var seen string
	Middleware(trusted)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		seen = From(r)
	})).ServeHTTP(httptest.NewRecorder(), r)
	if seen != "198.51.100.7" {
		t.Fatalf("From behind the middleware = %q, want the forwarded client", seen)
	}
}
