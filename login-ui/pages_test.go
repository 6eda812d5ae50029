package loginui

import (
	"log/slog"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
)

// Every page renders with typical data, escapes what it shows, and binds
// every input to a label.
func TestPagesRender(t *testing.T) {
	p, err := NewPages(Brand{Name: "Acme <ID>", PrimaryColor: "#123456", SupportEmail: "help@acme.example"}, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	user := &storage.User{ID: "u1", Username: "ada", Email: "ada@example.com", PasswordHash: "x"}
	pages := map[string]page{
		"login":    {Title: "Sign in", Error: "Invalid <b>", Register: true, Upstreams: []Upstream{{Name: "Google", URL: "/federation/google/start"}}, Challenge: "ch1", Resend: true, Login: "ada"},
		"consent":  {Title: "Allow", Client: &storage.Client{Name: "App <x>"}, Scopes: []scopeView{{"openid", "Sign in"}}},
		"logout":   {Title: "Sign out", User: "ada"},
		"error":    {Title: "Oops", Detail: "<script>"},
		"signedin": {Title: "Signed in", User: "ada"},
		"register": {Title: "Register", Fields: map[string]string{"username": "Bad."}, Values: map[string]string{"email": "a@b.example"}},
		"message":  {Title: "Check", Detail: "sent", Link: "/login", LinkText: "Sign in"},
		"verify":   {Title: "Verify", Token: "tok"},
		"forgot":   {Title: "Forgot"},
		"reset":    {Title: "Reset", Token: "tok", Fields: map[string]string{"password": "Too short."}},
		"account": {Title: "Account", Account: user, HasPassword: true,
			Sessions: []accounts.SessionView{{BrowserSession: storage.BrowserSession{ID: "s1", UserAgent: "Firefox", CreatedAt: now}, Current: true},
				{BrowserSession: storage.BrowserSession{ID: "s2", CreatedAt: now}}},
			Consents:   []accounts.ConsentView{{ClientID: "c1", ClientName: "App", Scopes: []string{"openid"}, GrantedAt: now}},
			Identities: []identityView{{Upstream: "google", UpstreamName: "Google <G>", Subject: "123", Email: "ada@gmail.example"}},
			Fields:     map[string]string{"confirm": "Required."}},
	}
	for name, data := range pages {
		t.Run(name, func(t *testing.T) {
			w := httptest.NewRecorder()
			p.render(w, 200, name, data)
			body := w.Body.String()
			if w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, body)
			}
			for _, bad := range []string{"<script>", "<b>", "App <x>", "Acme <ID>", "Google <G>"} {
				if strings.Contains(body, bad) {
					t.Errorf("unescaped %q", bad)
				}
			}
			// Every visible input has a label pointing at it.
			for _, m := range reInput.FindAllStringSubmatch(body, -1) {
				tag, id := m[0], m[1]
				if strings.Contains(tag, `type="hidden"`) || strings.Contains(tag, " hidden") {
					continue
				}
				if !strings.Contains(body, `for="`+id+`"`) {
					t.Errorf("input %s has no label", id)
				}
			}
			if !strings.Contains(body, `aria-live`) {
				t.Error("no live region for errors")
			}
		})
	}
}

var reInput = regexp.MustCompile(`<input[^>]*\bid="([^"]+)"[^>]*>`)

// The brand color follows internal/brand's rule: a valid one is what
// /brand.css says, anything else (a named color included, issue 9.10) is
// refused when the pages are built, never silently dropped.
func TestBrandColor(t *testing.T) {
	for _, color := range []string{"#2f5bea", "#0A7"} {
		p, err := NewPages(Brand{PrimaryColor: color}, nil)
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		p.handleBrandCSS().ServeHTTP(w, httptest.NewRequest("GET", "/brand.css", nil))
		if got, want := w.Body.String(), ":root { --primary: "+color+"; }\n"; got != want {
			t.Errorf("color %q: brand.css = %q, want %q", color, got, want)
		}
	}
	for _, color := range []string{"red", "red;}body{display:none", "#12345678"} {
		if _, err := NewPages(Brand{PrimaryColor: color}, nil); err == nil || !strings.Contains(err.Error(), "#rgb or #rrggbb") {
			t.Errorf("color %q: err = %v", color, err)
		}
	}
	// No color: no /brand.css link, the stylesheet's default.
	p, err := NewPages(Brand{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	p.render(w, 200, "error", page{Title: "x"})
	if strings.Contains(w.Body.String(), "/brand.css") {
		t.Error("brand.css linked without a color")
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/account":              "/account",
		"/account?x=1":          "/account?x=1",
		"":                      "",
		"account":               "",
		"//evil.example":        "",
		"/\\evil.example":       "",
		"/./\\evil.example/x":   "",
		"https://evil.example/": "",
		"/a\r\nSet-Cookie: x":   "",
		"/..//evil.example":     "/..//evil.example", // cleans to /evil.example, a path here
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}
