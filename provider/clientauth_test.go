package provider

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestClientAuthMethods(t *testing.T) {
	basic := http.Header{"Authorization": {"Basic Yzpz"}}
	bearer := http.Header{"Authorization": {"Bearer tok"}}
	tests := []struct {
		name   string
		header http.Header
		form   url.Values
		want   int
	}{
		{"nothing", nil, url.Values{}, 0},
		{"client_id alone (none)", nil, url.Values{"client_id": {"c"}}, 0},
		{"basic", basic, url.Values{}, 1},
		{"basic and client_id", basic, url.Values{"client_id": {"c"}}, 1},
		{"post", nil, url.Values{"client_id": {"c"}, "client_secret": {"s"}}, 1},
		{"empty client_secret is omitted (RFC 6749 §3.1)", basic, url.Values{"client_secret": {""}}, 1},
		{"assertion", nil, url.Values{"client_assertion_type": {"x"}, "client_assertion": {"a.b.c"}}, 1},
		{"assertion type alone", basic, url.Values{"client_assertion_type": {"x"}}, 2},
		{"basic and post", basic, url.Values{"client_secret": {"s"}}, 2},
		{"bearer and post", bearer, url.Values{"client_secret": {"s"}}, 2},
		{"basic and assertion", basic, url.Values{"client_assertion": {"a.b.c"}}, 2},
		{"post and assertion", nil, url.Values{"client_secret": {"s"}, "client_assertion": {"a.b.c"}}, 2},
		{"all three", basic, url.Values{"client_secret": {"s"}, "client_assertion": {"a.b.c"}}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := clientAuthMethods(tc.header, tc.form); got != tc.want {
				t.Fatalf("clientAuthMethods = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestCheckOneClientAuthMethodReadsTheForm(t *testing.T) {
	tests := []struct {
		name   string
		query  string
		ctype  string
		body   string
		pushed bool
		want   bool
	}{
		{"urlencoded body", "", "application/x-www-form-urlencoded", "client_secret=s", false, false},
		{"multipart body", "", "multipart/form-data; boundary=b",
			"--b\r\nContent-Disposition: form-data; name=\"client_secret\"\r\n\r\ns\r\n--b--\r\n", false, false},
		{"query is not the body", "client_secret=s", "application/x-www-form-urlencoded", "grant_type=x", false, true},
		{"query counts for PAR", "client_secret=s", "application/x-www-form-urlencoded", "grant_type=x", true, false},
		{"malformed multipart", "", "multipart/form-data; boundary=b", "garbage", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/oauth2/token?"+tc.query, strings.NewReader(tc.body))
			r.Header.Set("Content-Type", tc.ctype)
			r.SetBasicAuth("c", "s")
			w := httptest.NewRecorder()
			if got := checkOneClientAuthMethod(w, r, tc.pushed); got != tc.want {
				t.Fatalf("checkOneClientAuthMethod = %v, want %v (%d %s)", got, tc.want, w.Code, w.Body)
			}
			if !tc.want && w.Code != http.StatusBadRequest {
				t.Fatalf("status %d", w.Code)
			}
		})
	}
}
