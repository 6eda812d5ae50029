package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"golang.org/x/oauth2/clientcredentials"
)

// TestEndToEndSecretRotation: LATCHKEY_SECRET changes with the old value
// in LATCHKEY_PREVIOUS_SECRETS and nothing is lost: tokens made under the
// old secret are still accepted, the signing keys sealed under it open,
// `latchkey secrets reseal` moves them to the new secret (reporting the
// rows it changed, then none), after which the old secret can go.
func TestEndToEndSecretRotation(t *testing.T) {
	const (
		oldSecret = "rotation-old-secret-rotation-old-secret-01"
		newSecret = "rotation-new-secret-rotation-new-secret-02"
	)
	backends(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		addr := freePort(t)
		issuer := "http://" + addr
		s1, stop1 := startServerAt(t, dsn, addr, issuer, map[string]string{"LATCHKEY_SECRET": oldSecret})
		svc := s1.createClient("--name", "svc", "--grant-type", "client_credentials", "--scope", "api:read")
		cc := &clientcredentials.Config{ClientID: svc.ID, ClientSecret: svc.Secret, TokenURL: issuer + "/oauth2/token"}
		oldTok, err := cc.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		stop1()

		// The new secret, the old one still accepted.
		s2, stop2 := startServerAt(t, dsn, addr, issuer, map[string]string{
			"LATCHKEY_SECRET": newSecret, "LATCHKEY_PREVIOUS_SECRETS": oldSecret})
		if !active(t, s2, svc, oldTok.AccessToken) {
			t.Fatal("a token made under the previous secret is refused during the rotation")
		}
		newTok, err := cc.Token(ctx)
		if err != nil {
			t.Fatalf("a token under the new secret: %v", err)
		}
		reseal := func() map[string]int {
			t.Helper()
			out, err := s2.cli("", "secrets", "reseal", "--json")
			if err != nil {
				t.Fatal(err)
			}
			var counts map[string]int
			if err := json.Unmarshal([]byte(out), &counts); err != nil {
				t.Fatalf("reseal output %q: %v", out, err)
			}
			return counts
		}
		if n := reseal()["signing_keys.private_key"]; n < 2 {
			t.Fatalf("reseal changed %d signing keys; the old secret sealed at least 2 (RS256 and ES256)", n)
		}
		for col, n := range reseal() {
			if n != 0 {
				t.Fatalf("a second reseal changed %d rows of %s", n, col)
			}
		}
		stop2()

		// The previous secret removed: the resealed keys open, tokens of
		// the new secret work, those of the old one are gone with it.
		s3, _ := startServerAt(t, dsn, addr, issuer, map[string]string{"LATCHKEY_SECRET": newSecret})
		if !active(t, s3, svc, newTok.AccessToken) {
			t.Fatal("a token of the new secret is refused")
		}
		if active(t, s3, svc, oldTok.AccessToken) {
			t.Fatal("a token of a secret no longer configured is accepted")
		}
		// A JWT access token is signed with a resealed key.
		jc := s3.createClient("--name", "jwt", "--grant-type", "client_credentials", "--scope", "api:read", "--access-token-format", "jwt")
		jwt, err := (&clientcredentials.Config{ClientID: jc.ID, ClientSecret: jc.Secret, TokenURL: issuer + "/oauth2/token"}).Token(ctx)
		if err != nil || strings.Count(jwt.AccessToken, ".") != 2 {
			t.Fatalf("signing after the rotation: %v %+v", err, jwt)
		}
	})
}
