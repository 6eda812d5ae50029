package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/httpx"
)

// fuzzBody is shaped like the admin API's request bodies: text, lists,
// booleans, a nullable text and a list of objects (rate limits).
type fuzzBody struct {
	Name       string   `json:"name"`
	URIs       []string `json:"redirect_uris"`
	Public     bool     `json:"public"`
	Tier       *string  `json:"tier"`
	RateLimits *[]struct {
		Match  string `json:"match"`
		Limit  int    `json:"limit"`
		Period string `json:"period"`
	} `json:"rate_limits"`
}

func fuzzRequest(method, contentType string, body []byte) *http.Request {
	r := httptest.NewRequest(method, "/v1/x", bytes.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

// checkProblem: every refusal is a *Problem with a 4xx status, a detail
// and named fields.
func checkProblem(t *testing.T, err error) {
	t.Helper()
	var p *Problem
	if !errors.As(err, &p) {
		t.Fatalf("error %T %v is not a *Problem (it would be a 500)", err, err)
	}
	if p.Status < 400 || p.Status > 499 || p.Detail == "" || !strings.HasPrefix(p.Type, problemBase) {
		t.Fatalf("problem %+v", p)
	}
	for _, fe := range p.Errors {
		if fe.Field == "" || fe.Message == "" {
			t.Fatalf("problem %+v names a field without a name or message", p)
		}
	}
}

// checkStoredText: nothing decoded may hold text PostgreSQL refuses.
func checkStoredText(t *testing.T, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if field, bad := httpx.InvalidJSONText(b); bad {
		t.Fatalf("decoded value holds a NUL at %q: %s", field, b)
	}
}

func jsonType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []struct {
		body, ct string
		optional bool
	}{
		{`{"name":"App","redirect_uris":["https://app.example/cb"],"public":true}`, "application/json", false},
		{`{"tier":null,"rate_limits":[{"match":"api","limit":10,"period":"1m"}]}`, "application/json; charset=utf-8", false},
		{`{"name":"a\u0000b"}`, "application/json", false},
		{`{"rate_limits":[{"match":"\u0000"}]}`, "application/merge-patch+json", false},
		{`{"name":"x"} {"name":"y"}`, "application/json", false},
		{`{"name":"x"}}`, "application/json", false},
		{`{"nope":1}`, "application/json", false},
		{`{"name":1}`, "application/json", false},
		{`[]`, "application/json", false},
		{`null`, "application/json", false},
		{`{"name":"x"`, "application/json", false},
		{``, "", true},
		{`  `, "", false},
		{`{}`, "text/plain", false},
		{`{}`, "application/json; charset", false},
		{"{\"name\":\"\xff\"}", "application/json", false},
	} {
		f.Add([]byte(s.body), s.ct, s.optional)
	}
	f.Fuzz(func(t *testing.T, body []byte, ct string, optional bool) {
		var v fuzzBody
		err := decodeJSON(httptest.NewRecorder(), fuzzRequest(http.MethodPost, ct, body), &v, optional)
		if err != nil {
			checkProblem(t, err)
			return
		}
		if len(bytes.TrimSpace(body)) == 0 {
			if !optional {
				t.Fatal("an empty body was accepted where one is required")
			}
			return
		}
		// Accepted: one JSON value (nothing after it), of an accepted
		// media type, within the limit, without NUL.
		if !json.Valid(body) {
			t.Fatalf("accepted a body that is not one JSON value: %q", body)
		}
		if !jsonType(ct) || len(body) > maxBody {
			t.Fatalf("accepted Content-Type %q, %d bytes", ct, len(body))
		}
		checkStoredText(t, v)
		// Round trip: what was decoded encodes to a body that decodes to
		// the same value.
		again, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var w fuzzBody
		if err := decodeJSON(httptest.NewRecorder(), fuzzRequest(http.MethodPost, "application/json", again), &w, false); err != nil {
			t.Fatalf("re-encoded %s refused: %v", again, err)
		}
		if !reflect.DeepEqual(v, w) {
			t.Fatalf("round trip: %+v != %+v", v, w)
		}
	})
}

func FuzzDecodePatch(f *testing.F) {
	for _, s := range []string{
		`{"name":"App","scopes":["openid"],"first_party":true,"access_token_ttl":"15m"}`,
		`{"name":null}`,
		`{"access_token_format":null,"refresh_token_ttl":null,"redirect_uris":null}`,
		`{"access_token_ttl":"forever"}`,
		`{"access_token_ttl":"-1h"}`,
		`{"access_token_ttl":"9223372036854775807ns"}`,
		`{"scopes":"openid"}`,
		`{"scopes":[1]}`,
		`{"first_party":"yes"}`,
		`{"require_mfa":false,"first_party":true}`,
		`{"require_mfa":null}`,
		`{"public":true}`,
		`{"client_secret":"x","nope":1}`,
		`{"name":"a","name":"b"}`,
		`{"name":"\u0000"}`,
		`{}`,
		`null`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	durations := []string{"access_token_ttl", "refresh_token_ttl", "id_token_ttl", "auth_code_ttl"}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodePatch(httptest.NewRecorder(), fuzzRequest(http.MethodPatch, "application/merge-patch+json", body), clientPatchable, clientProtected)
		if err != nil {
			checkProblem(t, err)
			return
		}
		if p == nil || !json.Valid(body) {
			t.Fatalf("accepted %q as %v", body, p)
		}
		for k := range p {
			if !slices.Contains(clientPatchable, k) {
				t.Fatalf("accepted field %q, which is not patchable", k)
			}
		}
		// Every accessor either reads the field or refuses it with a 4xx,
		// and never reads a field that is absent.
		for _, name := range clientPatchable {
			var got any
			var err error
			switch {
			case slices.Contains(durations, name):
				var d *time.Duration
				d, err = p.duration(name)
				if err == nil && d != nil {
					if back, perr := time.ParseDuration(d.String()); perr != nil || back != *d {
						t.Fatalf("%s: %v does not re-parse (%v, %v)", name, *d, back, perr)
					}
					got = d
				}
			case name == "first_party" || name == "require_mfa":
				var b *bool
				b, err = p.boolean(name)
				if b != nil {
					got = b
				}
			case strings.HasSuffix(name, "s"):
				var l *[]string
				l, err = p.strings(name)
				if l != nil {
					if *l == nil {
						t.Fatalf("%s: a nil list (it would encode as null)", name)
					}
					got = l
				}
			default:
				var s *string
				s, err = p.str(name, name != "name")
				if s != nil {
					got = s
				}
			}
			if err != nil {
				checkProblem(t, err)
				if !p.has(name) {
					t.Fatalf("%s: refused while absent: %v", name, err)
				}
				continue
			}
			if got != nil && !p.has(name) {
				t.Fatalf("%s: read while absent", name)
			}
			if got != nil {
				checkStoredText(t, got)
			}
		}
	})
}
