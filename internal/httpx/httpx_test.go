package httpx

import (
	"bytes"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestValidText(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"", true},
		{"plain", true},
		{"Zoë 日本 🔑", true},
		{"a\x00b", false},
		{"\x00", false},
		{"\xff", false},
		{"caf\xc3", false},       // truncated sequence
		{"\xed\xa0\x80", false},  // UTF-16 surrogate
		{"\xc0\xaf", false},      // overlong "/"
		{"tab\tnewline\n", true}, // control characters other than NUL are text
	} {
		if got := ValidText(tc.s); got != tc.want {
			t.Errorf("ValidText(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}

func multipartBody(t *testing.T, fields map[string]string, file, fileName string) (string, string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for k, v := range fields {
		if err := w.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if file != "" {
		fw, err := w.CreateFormFile(file, fileName)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = fw.Write([]byte("binary \x00\xff data"))
	}
	_ = w.Close()
	return w.FormDataContentType(), b.String()
}

func TestRejectMalformedText(t *testing.T) {
	const form = "application/x-www-form-urlencoded"
	mpOK, mpOKBody := multipartBody(t, map[string]string{"login": "zoë"}, "upload", "photo.png")
	mpNUL, mpNULBody := multipartBody(t, map[string]string{"login": "zo\x00e"}, "", "")
	mpBadName, mpBadNameBody := multipartBody(t, map[string]string{"ok": "x"}, "upload", "a\xffb.png")
	tests := []struct {
		name, method, target, ctype, body string
		refused                           bool
		detail                            string // in the refusal
	}{
		{name: "plain GET", method: "GET", target: "/login?challenge=abc&next=/account"},
		{name: "unicode query", method: "GET", target: "/login?login=%C3%A9l%C3%A8ve"},
		{name: "encoded slash and plus", method: "GET", target: "/x?a=%2F+b"},
		{name: "NUL in query", method: "GET", target: "/login?challenge=%00", refused: true, detail: `"challenge"`},
		{name: "invalid UTF-8 in query", method: "GET", target: "/consent?challenge=%ff", refused: true, detail: `"challenge"`},
		{name: "NUL in a query name", method: "GET", target: "/x?a%00=1", refused: true, detail: "query parameter name"},
		{name: "bad pair skipped like r.URL.Query", method: "GET", target: "/x?a=%zz&b=1"},
		{name: "bad pair next to a NUL", method: "GET", target: "/x?a=%zz&b=%00", refused: true, detail: `"b"`},
		{name: "NUL in path", method: "GET", target: "/v1/users/%00", refused: true, detail: "path"},
		{name: "invalid UTF-8 in path", method: "GET", target: "/static/%ff", refused: true, detail: "path"},
		{name: "unicode path", method: "GET", target: "/v1/users/%C3%A9"},
		{name: "form OK", method: "POST", target: "/login", ctype: form, body: "login=zo%C3%AB&password=x"},
		{name: "form NUL", method: "POST", target: "/login", ctype: form, body: "login=a%00b&password=x", refused: true, detail: `form field "login"`},
		{name: "form raw invalid UTF-8", method: "POST", target: "/login", ctype: form, body: "login=a\xffb", refused: true, detail: `"login"`},
		{name: "form with charset", method: "PUT", target: "/x", ctype: form + "; charset=utf-8", body: "a=%ff", refused: true},
		{name: "PATCH form", method: "PATCH", target: "/x", ctype: form, body: "a=%00", refused: true},
		{name: "DELETE body is not a form", method: "DELETE", target: "/x", ctype: form, body: "a=%00"},
		{name: "JSON body is the decoder's", method: "POST", target: "/x", ctype: "application/json", body: `{"a":"\u0000"}`},
		{name: "multipart OK, binary file", method: "POST", target: "/oauth2/token", ctype: mpOK, body: mpOKBody},
		{name: "multipart NUL", method: "POST", target: "/oauth2/token", ctype: mpNUL, body: mpNULBody, refused: true, detail: `"login"`},
		{name: "multipart bad file name", method: "POST", target: "/x", ctype: mpBadName, body: mpBadNameBody, refused: true, detail: "file name"},
		{name: "multipart without boundary", method: "POST", target: "/x", ctype: "multipart/form-data", body: "a=%00"},
		{name: "oversized form passes to the handler", method: "POST", target: "/x", ctype: form,
			body: "a=%00&b=" + strings.Repeat("x", maxCheckedForm)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var handled bool
			var handlerBody string
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				handled = true
				b, err := io.ReadAll(r.Body)
				if err != nil {
					t.Errorf("handler reading the body: %v", err)
				}
				handlerBody = string(b)
				w.WriteHeader(http.StatusNoContent)
			})
			var detail string
			refuse := func(w http.ResponseWriter, r *http.Request, d string) {
				detail = d
				http.Error(w, d, http.StatusBadRequest)
			}
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			h := RejectMalformedText(log, refuse)(next)

			req := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if tc.refused {
				if handled || rec.Code != http.StatusBadRequest {
					t.Fatalf("not refused: handled=%v status %d", handled, rec.Code)
				}
				if !strings.Contains(detail, tc.detail) {
					t.Errorf("detail %q does not name %s", detail, tc.detail)
				}
				if !strings.Contains(logs.String(), "level=DEBUG") || strings.Contains(logs.String(), "level=ERROR") {
					t.Errorf("want one debug line, got %q", logs.String())
				}
				return
			}
			if !handled || rec.Code != http.StatusNoContent {
				t.Fatalf("refused (%q) or not handled: status %d", detail, rec.Code)
			}
			if handlerBody != tc.body {
				t.Errorf("the handler read %d bytes of the %d-byte body", len(handlerBody), len(tc.body))
			}
		})
	}
}

func TestInvalidJSONText(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		path       string
		found      bool
	}{
		{"clean object", `{"display_name":"Zoë","n":1,"ok":true,"x":null}`, "", false},
		{"NUL value", `{"username":"a","display_name":"a\u0000b"}`, "display_name", true},
		{"NUL key", `{"a\u0000":"x"}`, "a\u0000", true},
		{"nested", `{"rate_limits":[{"match":"ok","limit":1},{"match":"\u0000"}]}`, "rate_limits[1].match", true},
		{"after nested values", `{"a":{"b":[1,{"c":2}],"d":"x"},"e":"\u0000"}`, "e", true},
		{"array of strings", `{"scopes":["openid","\u0000"]}`, "scopes[1]", true},
		{"top-level string", `"\u0000"`, "", true},
		{"top-level array", `["a",["b","\u0000"]]`, "[1][1]", true},
		{"escaped backslash is not NUL", `{"a":"\\u0000"}`, "", false},
		{"raw invalid UTF-8 is replaced by the decoder", "{\"a\":\"\xff\"}", "", false},
		{"not JSON", `{"a":`, "", false},
		{"empty", ``, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, found := InvalidJSONText([]byte(tc.body))
			if path != tc.path || found != tc.found {
				t.Fatalf("InvalidJSONText(%s) = %q, %v; want %q, %v", tc.body, path, found, tc.path, tc.found)
			}
		})
	}
}
