package accounts

import (
	"errors"
	"testing"

	"github.com/go-webauthn/webauthn/webauthn"
)

func TestNewWebAuthn(t *testing.T) {
	for _, tc := range []struct {
		issuer, rpid, origin string
		ok                   bool
	}{
		{"https://id.example.com", "id.example.com", "https://id.example.com", true},
		{"http://localhost:8080", "localhost", "http://localhost:8080", true},
		{"https://id.example.com:8443/", "id.example.com", "https://id.example.com:8443", true},
		{"http://127.0.0.1:8080", "", "", false}, // browsers refuse an IP as relying party id
		{"http://[::1]:8080", "", "", false},
		{"not a url", "", "", false},
	} {
		w, err := NewWebAuthn(tc.issuer, "Latchkey")
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.issuer, err, tc.ok)
			continue
		}
		if tc.ok && (w.Config.RPID != tc.rpid || len(w.Config.RPOrigins) != 1 || w.Config.RPOrigins[0] != tc.origin) {
			t.Errorf("%s: RPID %q origins %v", tc.issuer, w.Config.RPID, w.Config.RPOrigins)
		}
	}
}

func TestPasskeyAMRAndCeremonyState(t *testing.T) {
	if got := passkeyAMR(&webauthn.Credential{Flags: webauthn.CredentialFlags{BackupEligible: true}}); got != "swk" {
		t.Errorf("synced passkey: %s", got)
	}
	if got := passkeyAMR(&webauthn.Credential{}); got != "hwk" {
		t.Errorf("device-bound passkey: %s", got)
	}
	for _, state := range [][]byte{nil, []byte("{}"), []byte("not json")} {
		if _, err := unmarshalState(state); !errors.Is(err, ErrPasskey) {
			t.Errorf("state %q: %v, want ErrPasskey", state, err)
		}
	}
	e := sqliteEnv(t)
	if _, _, err := e.svc.BeginPasskeySignIn(); !errors.Is(err, ErrNoPasskeys) {
		t.Errorf("without a relying party: %v", err)
	}
}
