package provider

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	josejsonv3 "github.com/go-jose/go-jose/v3/json"
	"github.com/ory/fosite"
)

// The store keeps sessions as JSON and unmarshals them into a fresh
// NewSession(): every field must survive the trip.
func TestSessionJSONRoundTrip(t *testing.T) {
	s := NewSession()
	s.Subject, s.Username, s.ClientID, s.SessionID, s.JWTAccessToken = "u_1", "alice", "c_1", "sid1", true
	s.DefaultSession.Claims.AuthTime = time.Unix(1700000000, 0).UTC()
	s.DefaultSession.Claims.Extra = map[string]interface{}{"email": "a@example.com"}
	s.SetExpiresAt(fosite.AccessToken, time.Unix(1700003600, 0).UTC())
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	got := NewSession()
	if err := json.Unmarshal(b, got); err != nil {
		t.Fatal(err)
	}
	if got.Subject != "u_1" || got.ClientID != "c_1" || got.SessionID != "sid1" || !got.JWTAccessToken ||
		!got.IDTokenClaims().AuthTime.Equal(s.DefaultSession.Claims.AuthTime) ||
		got.IDTokenClaims().Extra["email"] != "a@example.com" ||
		!got.GetExpiresAt(fosite.AccessToken).Equal(s.GetExpiresAt(fosite.AccessToken)) {
		t.Fatalf("round trip lost data: %s", b)
	}
}

func TestSessionCloneIsDeep(t *testing.T) {
	s := NewSession()
	s.DefaultSession.Claims.Extra = map[string]interface{}{"k": "v"}
	c := s.Clone().(*Session)
	c.DefaultSession.Claims.Extra["k"] = "changed"
	if s.DefaultSession.Claims.Extra["k"] != "v" {
		t.Fatal("clone shares claims with the original")
	}
}

func TestJWTAccessTokenClaims(t *testing.T) {
	s := NewSession()
	s.Subject, s.ClientID = "u_1", "c_1"
	c := s.GetJWTClaims().ToMapClaims()
	if c["sub"] != "u_1" || c["client_id"] != "c_1" || c["jti"] == "" {
		t.Fatalf("claims %v", c)
	}
	if s.GetJWTHeader().Extra["typ"] != "at+jwt" {
		t.Fatal("typ header must be at+jwt (RFC 9068)")
	}
}

func TestIsJWT(t *testing.T) {
	for tok, want := range map[string]bool{"a.b.c": true, "ory_at_x.y": false, "x": false} {
		if isJWT(tok) != want {
			t.Errorf("%s", tok)
		}
	}
}

// Claims read back from the store are signed by go-jose v3, which writes
// a float64 as 1.796312823e+09: numbers must come back as integers.
func TestSessionJSONKeepsIntegers(t *testing.T) {
	s := NewSession()
	limits := []map[string]interface{}{{"match": "api", "limit": int64(1000000), "period_seconds": int64(2592000)}}
	s.DefaultSession.Claims.Extra = map[string]interface{}{"updated_at": int64(1796312823), "tier_rate_limits": limits}
	s.Ext = map[string]interface{}{"tier_rate_limits": limits}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	got := NewSession()
	if err := json.Unmarshal(b, got); err != nil {
		t.Fatal(err)
	}
	for name, claims := range map[string]map[string]interface{}{
		"ID token":         got.IDTokenClaims().ToMap(),
		"JWT access token": got.GetJWTClaims().ToMapClaims(),
	} {
		signed, err := josejsonv3.Marshal(claims)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(signed), "e+") {
			t.Errorf("%s claims as go-jose v3 writes them: %s", name, signed)
		}
	}
	tests := []struct {
		in   any
		want any
	}{
		{float64(1796312823), int64(1796312823)},
		{float64(-3), int64(-3)},
		{1.5, 1.5},
		{float64(1 << 60), float64(1 << 60)}, // beyond float64's exact integers: left alone
		{"1", "1"},
		{true, true},
		{nil, nil},
	}
	for _, tc := range tests {
		if got := wholeNumbers(tc.in); got != tc.want {
			t.Errorf("wholeNumbers(%#v) = %#v, want %#v", tc.in, got, tc.want)
		}
	}
}
