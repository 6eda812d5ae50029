package federation

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/httpx"
)

// FuzzMapClaims: whatever an upstream's verified claims hold (decoded as
// go-oidc decodes them), the identity is text every store accepts,
// trimmed, with a picture only when it is an https URL with a host, and
// email_verified only when the claim says true.
func FuzzMapClaims(f *testing.F) {
	for _, s := range []struct{ sub, claims, username, name string }{
		{"1", `{"email":" a@example.com ","email_verified":true,"name":"Ada","preferred_username":"ada","picture":"https://x.example/p.png","hd":"example.com"}`, "", ""},
		{"1", `{"email":"a@example.com","email_verified":"TRUE ","picture":"http://x.example/p.png"}`, "", ""},
		{"1", `{"email_verified":1,"name":42,"picture":"https:///p.png","hd":["x"]}`, "", ""},
		{"1", `{"login":"ada","display":"Ada L"}`, "login", "display"},
		{"1", `{"name":"\u0000","preferred_username":"a\u0000b","hd":"\u0000example.com"}`, "", ""},
		{"1", `{"email":"a\u0000@example.com"}`, "", ""},
		{"a\x00b", `{}`, "", ""},
		{"1", `{"picture":"https://x.example/\u0000.png"}`, "", ""},
		{"1", `{"name":"a","name":"b"}`, "", "email"},
		{"", `null`, "", ""},
	} {
		f.Add(s.sub, []byte(s.claims), s.username, s.name)
	}
	f.Fuzz(func(t *testing.T, subject string, raw []byte, usernameClaim, nameClaim string) {
		claims := map[string]any{}
		if err := json.Unmarshal(raw, &claims); err != nil {
			return // go-oidc would have refused the token
		}
		names := ClaimNames{Username: usernameClaim, Name: nameClaim}
		id, err := mapClaims(subject, claims, names)
		if err != nil {
			if !strings.Contains(err.Error(), ErrInvalid.Error()) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			if httpx.ValidText(subject) && (claims["email"] == nil || httpx.ValidText(str(claims["email"]))) {
				t.Fatalf("refused valid claims: %v", err)
			}
			return
		}
		if id.Subject != subject {
			t.Fatalf("subject %q became %q", subject, id.Subject)
		}
		for name, v := range map[string]string{"Subject": id.Subject, "Email": id.Email, "Name": id.Name,
			"Username": id.Username, "HostedDomain": id.HostedDomain, "PictureURL": id.PictureURL} {
			if !httpx.ValidText(v) {
				t.Fatalf("%s %q holds text PostgreSQL refuses", name, v)
			}
			if name != "Subject" && v != strings.TrimSpace(v) {
				t.Fatalf("%s %q is not trimmed", name, v)
			}
		}
		if id.PictureURL != "" {
			u, err := url.Parse(id.PictureURL)
			if err != nil || u.Scheme != "https" || u.Host == "" {
				t.Fatalf("picture %q", id.PictureURL)
			}
		}
		if id.EmailVerified {
			switch v := claims["email_verified"].(type) {
			case bool:
			case string:
				if !strings.EqualFold(strings.TrimSpace(v), "true") {
					t.Fatalf("email_verified %q read as true", v)
				}
			default:
				t.Fatalf("email_verified %#v read as true", v)
			}
		}
		if e := str(claims["email"]); id.Email != strings.TrimSpace(e) {
			t.Fatalf("email %q read as %q", e, id.Email)
		}
	})
}
