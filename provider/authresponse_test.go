package provider

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/ory/fosite"
)

func TestAllowMissingState(t *testing.T) {
	stateErr := fosite.ErrInvalidState.WithHint("too short")
	tests := []struct {
		name  string
		form  url.Values
		state string
		err   error
		want  error
	}{
		{"no error", url.Values{}, "", nil, nil},
		{"no state, PKCE", url.Values{"code_challenge": {"x"}}, "", stateErr, nil},
		{"empty state, PKCE", url.Values{"state": {""}, "code_challenge": {"x"}}, "", stateErr, nil},
		{"short state, PKCE", url.Values{"state": {"abc"}, "code_challenge": {"x"}}, "abc", stateErr, fosite.ErrInvalidState},
		{"no state, no PKCE", url.Values{}, "", stateErr, fosite.ErrInvalidState},
		{"another error, PKCE", url.Values{"code_challenge": {"x"}}, "", fosite.ErrInvalidScope, fosite.ErrInvalidScope},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ar := fosite.NewAuthorizeRequest()
			ar.Form, ar.State = tc.form, tc.state
			got := allowMissingState(ar, tc.err)
			if (tc.want == nil) != (got == nil) || (tc.want != nil && !errors.Is(got, tc.want)) {
				t.Fatalf("allowMissingState = %v, want %v", got, tc.want)
			}
		})
	}
	if allowMissingState(nil, stateErr) == nil {
		t.Fatal("no request: the error must stay")
	}
}

var regexpHidden = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

func TestWriteAuthorizeError(t *testing.T) {
	const iss = "https://id.example"
	p := &Provider{cfg: Config{Issuer: iss}, fcfg: &fosite.Config{FormPostHTMLTemplate: formPostTemplate}}
	tests := []struct {
		name     string
		redirect string
		mode     fosite.ResponseModeType
		state    string
		want     url.Values
	}{
		{"query, state", "https://app.example/cb", fosite.ResponseModeQuery, "s-12345678",
			url.Values{"error": {"access_denied"}, "state": {"s-12345678"}, "iss": {iss}}},
		{"query, no state: none echoed", "https://app.example/cb", fosite.ResponseModeQuery, "",
			url.Values{"error": {"access_denied"}, "iss": {iss}}},
		{"default mode is the query", "https://app.example/cb", fosite.ResponseModeDefault, "",
			url.Values{"error": {"access_denied"}, "iss": {iss}}},
		{"the redirect URI's query stays", "https://app.example/cb?tenant=a", fosite.ResponseModeQuery, "",
			url.Values{"error": {"access_denied"}, "iss": {iss}, "tenant": {"a"}}},
		{"form_post, no state", "https://app.example/cb", fosite.ResponseModeFormPost, "",
			url.Values{"error": {"access_denied"}, "iss": {iss}}},
		{"form_post, state", "https://app.example/cb", fosite.ResponseModeFormPost, "s-12345678",
			url.Values{"error": {"access_denied"}, "iss": {iss}, "state": {"s-12345678"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ar := fosite.NewAuthorizeRequest()
			ar.RedirectURI, _ = url.Parse(tc.redirect)
			ar.State = tc.state
			ar.ResponseMode = tc.mode
			w := httptest.NewRecorder()
			p.writeAuthorizeError(t.Context(), w, ar, fosite.ErrAccessDenied)
			var got url.Values
			if tc.mode == fosite.ResponseModeFormPost {
				if w.Code != http.StatusOK || !strings.Contains(w.Header().Get("Content-Security-Policy"), "form-action https://app.example") {
					t.Fatalf("form_post page: %d %v", w.Code, w.Header())
				}
				got = url.Values{}
				for _, m := range regexpHidden.FindAllStringSubmatch(w.Body.String(), -1) {
					got.Add(m[1], m[2])
				}
			} else {
				loc, err := url.Parse(w.Header().Get("Location"))
				if w.Code != http.StatusSeeOther || err != nil || !strings.HasPrefix(loc.String(), "https://app.example/cb?") {
					t.Fatalf("redirect: %d %q", w.Code, w.Header().Get("Location"))
				}
				got = loc.Query()
			}
			got.Del("error_description")
			if got.Encode() != tc.want.Encode() {
				t.Fatalf("parameters %v, want %v", got, tc.want)
			}
			if ar.GetRedirectURI().String() != tc.redirect {
				t.Fatalf("the request's redirect URI was changed: %s", ar.GetRedirectURI())
			}
		})
	}
}
