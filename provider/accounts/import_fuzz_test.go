package accounts

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/httpx"
)

// FuzzParseImportLine: a record is accepted only when the line is exactly
// one JSON object of known fields (a second record on the same line would
// otherwise be dropped without a word), holding no text PostgreSQL
// refuses; what is read re-encodes to a line that reads the same.
func FuzzParseImportLine(f *testing.F) {
	for _, s := range []string{
		`{"username":"ada","email":"ada@example.com","password_hash":"$2a$10$abc","email_verified":true,"tier":"gold"}`,
		`{"username":"ada","email":"ada@example.com","created_at":"2020-05-01T10:00:00Z"}`,
		`{"username":"ada","email":"ada@example.com"} {"username":"bob","email":"bob@example.com"}`,
		`{"username":"ada"}{"username":"bob"}`,
		`{"username":"ada"} trailing`,
		`{"username":"ada"}}`,
		`{"username":"ada","colour":"blue"}`,
		`{"display_name":"\u0000"}`,
		`{"created_at":"yesterday"}`,
		`{"email_verified":"yes"}`,
		`null`, `[]`, `"ada"`, `not json`, `{`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		l, field, problem := parseImportLine(raw)
		if problem != "" {
			if l != (ImportLine{}) {
				t.Fatalf("refused %q (%s) but returned %+v", raw, problem, l)
			}
			if field != "" && problem != httpx.TextRule {
				t.Fatalf("field %q with %q", field, problem)
			}
			return
		}
		if field != "" {
			t.Fatalf("accepted %q naming field %q", raw, field)
		}
		if !json.Valid([]byte(raw)) {
			t.Fatalf("accepted %q, which is not exactly one JSON value", raw)
		}
		b, err := json.Marshal(l)
		if err != nil {
			// A time outside what RFC 3339 can write: refused by Marshal,
			// so it could not have been read either.
			t.Fatalf("accepted %q: %+v does not encode: %v", raw, l, err)
		}
		if f, bad := httpx.InvalidJSONText(b); bad {
			t.Fatalf("accepted %q with a NUL in %s", raw, f)
		}
		again, _, problem := parseImportLine(string(b))
		if problem != "" || !again.CreatedAt.Equal(l.CreatedAt) {
			t.Fatalf("%q re-encoded as %s: %q, %+v", raw, b, problem, again)
		}
		again.CreatedAt, l.CreatedAt = time.Time{}, time.Time{}
		if again != l {
			t.Fatalf("round trip %+v != %+v", again, l)
		}
		if !strings.HasPrefix(strings.TrimLeft(raw, " \t\r\n"), "{") {
			t.Fatalf("accepted %q, which is not an object", raw)
		}
	})
}
