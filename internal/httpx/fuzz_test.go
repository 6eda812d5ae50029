package httpx

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// allText reports whether every key and value of vs is ValidText.
func allText(vs map[string][]string) bool {
	for k, v := range vs {
		if !ValidText(k) {
			return false
		}
		for _, s := range v {
			if !ValidText(s) {
				return false
			}
		}
	}
	return true
}

var fuzzMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// FuzzRejectMalformedText: a request the edge check lets through reaches
// the handler with its body intact, and then nothing a handler reads —
// path, query, urlencoded or multipart form (values and file names),
// through any of net/http's accessors — holds a NUL or invalid UTF-8. A
// refused request never reaches the handler and gets a reason.
func FuzzRejectMalformedText(f *testing.F) {
	const boundary = "XyZ"
	mp := func(parts ...string) []byte {
		var b bytes.Buffer
		for _, p := range parts {
			b.WriteString("--" + boundary + "\r\n" + p + "\r\n")
		}
		b.WriteString("--" + boundary + "--\r\n")
		return b.Bytes()
	}
	for _, s := range []struct {
		path, query string
		method      uint8
		ct          string
		body        []byte
	}{
		{"/login", "challenge=abc", 0, "", nil},
		{"/login\x00", "", 0, "", nil},
		{"/login", "a=%00", 0, "", nil},
		{"/login", "a=%ff&b", 0, "", nil},
		{"/login", "%zz=1&a=%00", 0, "", nil},
		{"/login", "", 1, "application/x-www-form-urlencoded", []byte("username=ada&password=x")},
		{"/login", "", 1, "application/x-www-form-urlencoded", []byte("username=%00")},
		{"/login", "", 1, "application/x-www-form-urlencoded; charset", []byte("username=%00")},
		{"/login", "", 1, "application/x-www-form-urlencoded;=", []byte("a=%C3")},
		{"/login", "", 3, "APPLICATION/X-WWW-FORM-URLENCODED", []byte("a=%00")},
		{"/login", "", 2, "multipart/form-data; boundary=" + boundary,
			mp("Content-Disposition: form-data; name=\"a\"\r\n\r\nok", "Content-Disposition: form-data; name=\"b\"\r\n\r\n\x00")},
		{"/login", "", 1, "multipart/form-data; boundary=" + boundary,
			mp("Content-Disposition: form-data; name=\"f\"; filename=\"a\xff.txt\"\r\n\r\n\x00\xff")},
		{"/login", "", 1, "multipart/form-data; boundary=" + boundary,
			mp("Content-Disposition: form-data; name=\"q\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=00")},
		{"/login", "", 4, "application/x-www-form-urlencoded", []byte("a=%00")},
	} {
		f.Add(s.path, s.query, s.method, s.ct, s.body)
	}
	f.Fuzz(func(t *testing.T, path, query string, method uint8, ct string, body []byte) {
		r := httptest.NewRequest(fuzzMethods[int(method)%len(fuzzMethods)], "/", bytes.NewReader(body))
		r.URL.Path, r.URL.RawPath, r.URL.RawQuery = path, "", query
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		reached, refused := false, ""
		next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reached = true
			got, err := io.ReadAll(r.Body)
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("the handler got body %q (%v), the client sent %q", got, err, body)
			}
			r.Body = io.NopCloser(bytes.NewReader(got))
			// As handlers read input: errors ignored, as FormValue does.
			_ = r.ParseMultipartForm(1 << 20)
			if !ValidText(r.URL.Path) || !allText(r.URL.Query()) || !allText(r.Form) || !allText(r.PostForm) {
				t.Fatalf("malformed text reached the handler: path %q query %q form %q", r.URL.Path, r.URL.Query(), r.Form)
			}
			if mf := r.MultipartForm; mf != nil {
				if !allText(mf.Value) {
					t.Fatalf("malformed multipart value reached the handler: %q", mf.Value)
				}
				for k, fhs := range mf.File {
					for _, fh := range fhs {
						if !ValidText(k) || !ValidText(fh.Filename) {
							t.Fatalf("malformed file name reached the handler: %q %q", k, fh.Filename)
						}
					}
				}
				_ = mf.RemoveAll()
			}
		})
		refuse := func(w http.ResponseWriter, r *http.Request, detail string) {
			refused = detail
			w.WriteHeader(http.StatusBadRequest)
		}
		RejectMalformedText(nil, refuse)(next).ServeHTTP(httptest.NewRecorder(), r)
		if reached == (refused != "") {
			t.Fatalf("reached the handler: %v, refused: %q", reached, refused)
		}
	})
}

// FuzzInvalidJSONText: every NUL in a string of a JSON document, key or
// value, is found; and one is found only where the document has a
// "\u0000" escape (decoded JSON strings are always valid UTF-8).
func FuzzInvalidJSONText(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, `{"a":"\u0000"}`, `{"\u0000":1}`, `"\u0000"`, `[1,"x",{"y":["\u0000"]}]`,
		`{"a":{"b":[{"c":"\u0000"}]}}`, `{"a":"b","a":"\u0000"}`, "{\"a\":\"\xff\"}", `{"a":"\u0000`, `{"a":1}{"b":"\u0000"}`,
		`{"a":"\\u0000"}`, `[[[]],{}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		path, found := InvalidJSONText(body)
		if found && !bytes.Contains(body, []byte(`\u0000`)) {
			t.Fatalf("found %q in %q, which has no \\u0000", path, body)
		}
		if !found && path != "" {
			t.Fatalf("a path %q without a finding", path)
		}
		if !json.Valid(body) {
			return
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber() // a valid number may not fit a float64
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		var bad func(v any) bool
		bad = func(v any) bool {
			switch v := v.(type) {
			case string:
				return !ValidText(v)
			case []any:
				for _, e := range v {
					if bad(e) {
						return true
					}
				}
			case map[string]any:
				for k, e := range v {
					if !ValidText(k) || bad(e) {
						return true
					}
				}
			}
			return false
		}
		if bad(v) && !found {
			t.Fatalf("missed a NUL in %q", body)
		}
	})
}
