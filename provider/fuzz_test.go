package provider

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/httpx"
)

// ---- the account API's body decoder (accountapi.go decodeStrict) ----

// afterFirstValue returns what follows the first JSON value of body, with
// leading white space removed, and whether body starts with one.
func afterFirstValue(body []byte) ([]byte, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	return bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n"), true
}

func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []struct{ body, ct string }{
		{`{"current_password":"old","new_password":"correct horse battery"}`, "application/json"},
		{`{"display_name":"Ada","locale":"en"}`, "application/json; charset=utf-8"},
		{`{"display_name":"\u0000"}`, "application/json"},
		{`{"a":{"b":["\u0000"]}}`, "application/json"},
		{`{"x":1} {"y":2}`, "application/json"},
		{`{"display_name":"x"}}`, "application/json"},
		{`{"display_name":"x"}]`, "application/json"},
		{`{"x":1}}`, "application/json"},
		{`{"x":1`, "application/json"},
		{`[]`, "application/json"},
		{`null`, "application/json"},
		{`{}`, "text/plain"},
		{`{}`, ""},
		{"{\"a\":\"\xff\"}", "application/json"},
	} {
		f.Add([]byte(s.body), s.ct)
	}
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		var raw map[string]json.RawMessage
		errRaw := decodeStrict(httptest.NewRecorder(), newFuzzRequest(body, ct), &raw)
		var typed struct {
			CurrentPassword string `json:"current_password"`
			NewPassword     string `json:"new_password"`
		}
		errTyped := decodeStrict(httptest.NewRecorder(), newFuzzRequest(body, ct), &typed)
		for _, err := range []error{errRaw, errTyped} {
			if err != nil && err.Error() == "" {
				t.Fatal("an error without a message")
			}
		}
		if errRaw != nil {
			return
		}
		if !strings.HasPrefix(ct, "application/json") || len(body) > 16<<10 {
			t.Fatalf("accepted Content-Type %q, %d bytes", ct, len(body))
		}
		rest, ok := afterFirstValue(body)
		if !ok {
			t.Fatalf("accepted %q, which does not start with a JSON value", body)
		}
		// Nothing may follow the object (not even a stray '}' or ']').
		if len(rest) > 0 {
			t.Fatalf("accepted data after the JSON object: %q", body)
		}
		b, err := json.Marshal(raw)
		if err != nil {
			t.Fatal(err)
		}
		if field, bad := httpx.InvalidJSONText(b); bad {
			t.Fatalf("accepted a NUL at %q", field)
		}
		if raw == nil && !bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("null")) {
			t.Fatalf("accepted %q as no object", body)
		}
	})
}

func newFuzzRequest(body []byte, ct string) *http.Request {
	r := httptest.NewRequest("PATCH", "/account", bytes.NewReader(body))
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	return r
}

// ---- the redirect-URI matcher (redirect.go matchRedirectURI) ----

func FuzzMatchRedirectURI(f *testing.F) {
	for _, s := range []struct {
		requested, registered string
		public                bool
	}{
		{"https://app.example/cb", "https://app.example/cb", false},
		{"http://127.0.0.1:5000/cb", "http://127.0.0.1:4711/cb", true},
		{"http://[::1]/cb?x=1", "http://[::1]:4711/cb?x=1", true},
		{"http://evil@127.0.0.1:4711/cb", "http://127.0.0.1:4711/cb", true},
		{"https://u@app.example/cb", "https://u@app.example/cb", false},
		{"http://127.0.0.1:4711@evil.example/cb", "http://127.0.0.1/cb", true},
		{"http://127.0.0.1:4711\\@evil.example/cb", "http://127.0.0.1/cb", true},
		{"http://127.0.0.1:5000/cb?", "http://127.0.0.1:4711/cb", true},
		{"http://127.0.0.1:5000/cb#x", "http://127.0.0.1:4711/cb#x", true},
		{"HTTP://127.0.0.1:5000/cb", "http://127.0.0.1:4711/cb", true},
		{"http://127.0.0.1:065535/cb", "http://127.0.0.1/cb", true},
		{"http://127.0.0.1:65536/cb", "http://127.0.0.1/cb", true},
		{"http://[::ffff:127.0.0.1]:1/cb", "http://127.0.0.1/cb", true},
		{"myapp:/cb", "myapp:/cb\nhttps://app.example/cb", false},
		{"", "", true},
	} {
		f.Add(s.requested, s.registered, s.public)
	}
	f.Fuzz(func(t *testing.T, requested, registeredLines string, public bool) {
		registered := strings.Split(registeredLines, "\n")
		got := matchRedirectURI(requested, registered, public)
		exact := slices.Contains(registered, requested)

		ru, err := url.Parse(requested)
		if got && (requested == "" || err != nil || ru.User != nil) {
			t.Fatalf("matched %q, which has userinfo or does not parse", requested)
		}
		if !got && exact && requested != "" && err == nil && ru.User == nil {
			t.Fatalf("a registered URI %q does not match itself", requested)
		}
		if got && !exact {
			// Only RFC 8252's loopback rule, for public clients: an
			// http:// IP literal, another port, the same everything else.
			if !public {
				t.Fatalf("confidential client: %q matched %q not byte for byte", requested, registered)
			}
			if !strings.HasPrefix(requested, "http://127.0.0.1") && !strings.HasPrefix(requested, "http://[::1]") {
				t.Fatalf("%q matched by the loopback rule", requested)
			}
			if ru.Scheme != "http" || (ru.Hostname() != "127.0.0.1" && ru.Hostname() != "::1") ||
				ru.Fragment != "" || ru.ForceQuery || strings.Contains(requested, "#") {
				t.Fatalf("%q matched by the loopback rule: %#v", requested, ru)
			}
			if p := ru.Port(); p != "" {
				if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p {
					t.Fatalf("%q: port %q", requested, p)
				}
			}
			same := false
			for _, reg := range registered {
				rg, err := url.Parse(reg)
				if err == nil && rg.User == nil && rg.Scheme == "http" && rg.Hostname() == ru.Hostname() &&
					rg.EscapedPath() == ru.EscapedPath() && rg.RawQuery == ru.RawQuery {
					same = true
				}
			}
			if !same {
				t.Fatalf("%q matched none of %q by host, path and query", requested, registered)
			}
		}
		// More registered URIs never match less.
		if got && !matchRedirectURI(requested, append(registered, "https://other.example/cb"), public) {
			t.Fatal("adding a registered URI unmatched")
		}
	})
}
