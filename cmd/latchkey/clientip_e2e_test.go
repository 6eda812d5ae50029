package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchkey/latchkey/internal/testdb"
)

// Behind a trusted proxy every record of a client's address agrees: the
// session list, the audit log of a self-service change and of an admin
// action all hold the forwarded client, not the proxy (regression: the
// session list and the admin audit took the peer address).
func TestEndToEndClientIPBehindTrustedProxy(t *testing.T) {
	s := startServer(t, testdb.SQLite(t), map[string]string{"LATCHKEY_TRUSTED_PROXIES": "127.0.0.1/32"})
	const pw = "omar's long password"
	s.createUser("omar", pw)
	const client = "198.51.100.7"

	b := newBrowser(t, "http://never.invalid/")
	// Every request of this browser comes through the "proxy" (the test
	// itself, on 127.0.0.1) on behalf of client.
	b.c.Transport = forwardedFor{client}
	if p := b.signInAccount(s, "omar", pw); p.url.Path != "/account" {
		t.Fatalf("sign-in: %d %s", p.status, p.url)
	}
	_, tok := b.csrf(s.issuer + "/account")
	if p := b.post(s.issuer+"/account/profile", url.Values{"csrf_token": {tok}, "display_name": {"Omar"}}); p.status >= 400 {
		t.Fatalf("profile: %d", p.status)
	}

	adm := s.createClient("--admin")
	at, err := (&clientcredentials.Config{ClientID: adm.ID, ClientSecret: adm.Secret, TokenURL: s.issuer + "/oauth2/token",
		Scopes: []string{"admin"}}).Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, found := s.adminCall(t, at.AccessToken, http.MethodGet, "/v1/users?username=omar", nil)
	items, _ := found["users"].([]any)
	if len(items) != 1 {
		t.Fatalf("user lookup: %v", found)
	}
	id := items[0].(map[string]any)["id"].(string)

	_, sessions := s.adminCall(t, at.AccessToken, http.MethodGet, "/v1/users/"+id+"/sessions", nil)

	// An admin action through the proxy.
	req, _ := http.NewRequest(http.MethodPost, s.admin+"/v1/users/"+id+"/suspend", strings.NewReader(`{"reason":"proxy test"}`))
	req.Header.Set("Authorization", "Bearer "+at.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", client)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("suspend: %d", resp.StatusCode)
	}

	_, audit := s.adminCall(t, at.AccessToken, http.MethodGet, "/v1/audit-events?target="+id, nil)
	var ips []string
	for _, list := range []struct {
		m   map[string]any
		key string
	}{{sessions, "sessions"}, {audit, "events"}} {
		rows, _ := list.m[list.key].([]any)
		if len(rows) == 0 {
			t.Fatalf("no rows in %v", list.m)
		}
		for _, row := range rows {
			m := row.(map[string]any)
			if m["ip"] == "" || m["ip"] == nil {
				continue // events written by the CLI carry no address
			}
			ips = append(ips, m["ip"].(string))
			if m["ip"] != client {
				t.Errorf("recorded %v, want %s: %v", m["ip"], client, m)
			}
		}
	}
	if len(ips) < 3 {
		t.Fatalf("expected a session and two audit events with an address, got %v", ips)
	}
}

// forwardedFor is a transport that adds X-Forwarded-For, as a proxy would.
type forwardedFor struct{ client string }

func (f forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.client)
	return http.DefaultTransport.RoundTrip(r)
}
