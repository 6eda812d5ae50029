package provider

import (
	"errors"
	"net/url"
	"slices"
	"testing"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/storage"
)

func TestRequestedResources(t *testing.T) {
	const a, b = "https://a.example/api", "https://b.example"
	tests := []struct {
		name    string
		form    url.Values
		want    []string
		invalid bool
	}{
		{"none", url.Values{}, nil, false},
		{"one", url.Values{"resource": {a}}, []string{a}, false},
		{"several, in order, once each", url.Values{"resource": {a, b, a}}, []string{a, b}, false},
		{"empty is omitted", url.Values{"resource": {""}}, nil, false},
		{"audience as well", url.Values{"resource": {a}, "audience": {b + " " + a}}, []string{a, b}, false},
		{"audience repeated", url.Values{"audience": {a, b}}, []string{a, b}, false},
		{"urn", url.Values{"resource": {"urn:example:x"}}, []string{"urn:example:x"}, false},
		{"relative", url.Values{"resource": {"/api"}}, nil, true},
		{"fragment", url.Values{"resource": {a + "#f"}}, nil, true},
		{"client id", url.Values{"audience": {"c_123"}}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := requestedResources(tc.form)
			if tc.invalid {
				if !errors.Is(err, errInvalidTarget("")) {
					t.Fatalf("err %v, want invalid_target", err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	plain := url.Values{"grant_type": {"client_credentials"}}
	if n := testing.AllocsPerRun(100, func() { _, _ = requestedResources(plain) }); n != 0 {
		t.Errorf("a request without resources allocates %v times", n)
	}
}

func TestAudienceStrategyIsExact(t *testing.T) {
	allowed := []string{"https://a.example/api", "c_1"}
	for _, tc := range []struct {
		requested []string
		ok        bool
	}{
		{nil, true},
		{[]string{"https://a.example/api"}, true},
		{[]string{"c_1", "https://a.example/api"}, true},
		{[]string{"https://a.example/api/sub"}, false}, // fosite's default would accept it
		{[]string{"https://a.example/api/"}, false},
		{[]string{"https://A.example/api"}, false},
	} {
		err := audienceStrategy(allowed, tc.requested)
		if (err == nil) != tc.ok || (err != nil && fosite.ErrorToRFC6749Error(err).ErrorField != "invalid_target") {
			t.Errorf("%v: %v", tc.requested, err)
		}
	}
}

func TestGrantResources(t *testing.T) {
	const a, b, x = "https://a.example", "https://b.example", "https://x.example"
	client := &storage.Client{ID: "c_1", Audience: []string{a, b}}
	tests := []struct {
		name      string
		grant     string
		resources []string // the grant's (Session.Resources)
		form      url.Values
		want      []string
		invalid   bool
	}{
		{"client_credentials, none", "client_credentials", nil, url.Values{}, []string{"c_1"}, false},
		{"client_credentials, one", "client_credentials", nil, url.Values{"resource": {b}}, []string{b}, false},
		{"client_credentials, foreign", "client_credentials", nil, url.Values{"resource": {x}}, nil, true},
		{"code, grant without resources", "authorization_code", nil, url.Values{}, []string{"c_1"}, false},
		{"code, asks beyond the grant", "authorization_code", nil, url.Values{"resource": {a}}, nil, true},
		{"code, all of the grant", "authorization_code", []string{a, b}, url.Values{}, []string{a, b}, false},
		{"code, narrowed", "authorization_code", []string{a, b}, url.Values{"resource": {b}}, []string{b}, false},
		{"refresh, narrowed", "refresh_token", []string{a, b}, url.Values{"resource": {a}}, []string{a}, false},
		{"refresh, beyond the grant", "refresh_token", []string{a}, url.Values{"resource": {b}}, nil, true},
		{"refresh, an audience the client lost", "refresh_token", []string{a, x}, url.Values{}, []string{a}, false},
		{"refresh, every audience lost", "refresh_token", []string{x}, url.Values{}, nil, true},
		{"refresh, malformed", "refresh_token", []string{a}, url.Values{"resource": {"a"}}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sess := NewSession()
			sess.Resources = tc.resources
			ar := fosite.NewAccessRequest(sess)
			ar.GrantTypes = fosite.Arguments{tc.grant}
			ar.Form = tc.form
			ar.Client = client
			ar.GrantedAudience = fosite.Arguments{"left over"}
			err := grantResources(ar, client)
			if tc.invalid {
				if fosite.ErrorToRFC6749Error(err).ErrorField != "invalid_target" {
					t.Fatalf("err %v, want invalid_target", err)
				}
				return
			}
			if err != nil || !slices.Equal(ar.GetGrantedAudience(), tc.want) {
				t.Fatalf("granted %v, %v; want %v", ar.GetGrantedAudience(), err, tc.want)
			}
		})
	}
	if !slices.Equal(client.Audience, []string{a, b}) {
		t.Fatalf("the (cached, shared) client was changed: %v", client.Audience)
	}
}
