package mail

import (
	"html"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func newTestTemplates(t *testing.T) *Templates {
	t.Helper()
	tp, err := NewTemplates(Brand{Product: "Latchkey", SupportEmail: "help@example.com", PrimaryColor: "#0a7"})
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func TestRenderEveryKind(t *testing.T) {
	tp := newTestTemplates(t)
	until := time.Date(2030, 1, 2, 15, 4, 5, 0, time.FixedZone("CET", 3600))
	const link = "https://id.example.com/verify?token=abc&x=1"
	data := Data{
		Name:      `<script>alert("x")</script>`,
		Link:      link,
		ExpiresIn: 24 * time.Hour,
		NewEmail:  "new@example.com",
		IP:        "192.0.2.7",
		Until:     until,
	}
	// What each kind must say, in both parts.
	want := map[Kind][]string{
		KindWelcome:            {"Welcome to Latchkey", "confirm your email address", "24 hours"},
		KindVerifyEmail:        {"24 hours", "did not create an account", "ignore this email"},
		KindPasswordReset:      {"24 hours", "ignore this email", "your password is unchanged"},
		KindPasswordChanged:    {"password", "changed", "wasn't you", "help@example.com", "all sessions were signed out", "192.0.2.7"},
		KindAccountLocked:      {"too many failed attempts", "Wed, 02 Jan 2030 14:04:05 UTC", "Reset your password", "192.0.2.7"},
		KindEmailChange:        {"new@example.com", "confirm the change", "24 hours"},
		KindEmailChangedNotice: {"changed to new@example.com", "wasn't you", "help@example.com"},
		KindAccountDeleted:     {"was deleted", "restored", "grace period", "help@example.com", "Wed, 02 Jan 2030 14:04:05 UTC"},
		KindAccountExists:      {"already has one", "No new account was created", "ignore this email"},
		KindFactorAdded:        {"was just added", "wasn't you", "help@example.com", "192.0.2.7"},
		KindFactorRemoved:      {"was just removed", "wasn't you", "help@example.com", "192.0.2.7"},
		KindRecoveryCodeUsed:   {"recovery codes was just used", "works once", "help@example.com"},
	}
	wantSubject := map[Kind]string{
		KindWelcome:            "Welcome to Latchkey",
		KindVerifyEmail:        "Verify your email address",
		KindPasswordReset:      "Reset your password",
		KindPasswordChanged:    "Your password was changed",
		KindAccountLocked:      "Sign-in temporarily locked",
		KindEmailChange:        "Confirm your new email address",
		KindEmailChangedNotice: "Your email address was changed",
		KindAccountDeleted:     "Your account was deleted",
		KindAccountExists:      "You already have an account",
		KindFactorAdded:        "A sign-in method was added",
		KindFactorRemoved:      "A sign-in method was removed",
		KindRecoveryCodeUsed:   "A recovery code was used",
	}
	withLink := map[Kind]bool{KindWelcome: true, KindVerifyEmail: true, KindPasswordReset: true, KindAccountLocked: true, KindEmailChange: true, KindAccountExists: true}

	if len(Kinds()) != len(want) {
		t.Fatalf("Kinds() = %v; the test covers %d kinds", Kinds(), len(want))
	}
	for _, k := range Kinds() {
		t.Run(string(k), func(t *testing.T) {
			m, err := tp.Render(k, "ada@example.com", data)
			if err != nil {
				t.Fatal(err)
			}
			if m.To != "ada@example.com" {
				t.Errorf("To = %q", m.To)
			}
			if !strings.Contains(m.Subject, wantSubject[k]) || !strings.Contains(m.Subject, "Latchkey") {
				t.Errorf("Subject = %q, want it to contain %q and the product name", m.Subject, wantSubject[k])
			}
			if len(m.Subject) > 60 {
				t.Errorf("Subject %q is long", m.Subject)
			}
			if strings.Contains(m.HTML, "<script>") || !strings.Contains(m.HTML, "&lt;script&gt;") {
				t.Errorf("HTML does not escape the name:\n%s", m.HTML)
			}
			if !strings.Contains(m.Text, data.Name) {
				t.Errorf("Text lacks the name:\n%s", m.Text)
			}
			if !strings.HasPrefix(m.HTML, "<!DOCTYPE html>") || !strings.Contains(m.HTML, `<html lang="en">`) {
				t.Errorf("HTML is not a complete document:\n%s", m.HTML)
			}
			htmlText := html.UnescapeString(m.HTML)
			for _, s := range want[k] {
				if !strings.Contains(m.Text, s) {
					t.Errorf("Text lacks %q:\n%s", s, m.Text)
				}
				if !strings.Contains(htmlText, s) {
					t.Errorf("HTML lacks %q:\n%s", s, m.HTML)
				}
			}
			escLink := html.EscapeString(link)
			if withLink[k] {
				if !strings.Contains(m.Text, "\n"+link+"\n") {
					t.Errorf("Text lacks the link on its own line:\n%s", m.Text)
				}
				if !strings.Contains(m.HTML, `href="`+escLink+`"`) || !strings.Contains(m.HTML, ">"+escLink+"</a>") {
					t.Errorf("HTML lacks the link in href and visible text:\n%s", m.HTML)
				}
			} else if strings.Contains(m.Text, link) || strings.Contains(m.HTML, escLink) {
				t.Errorf("%s should not show the link", k)
			}
			// Every link in the HTML is also in the text part.
			for _, href := range hrefs(m.HTML) {
				target := strings.TrimPrefix(href, "mailto:")
				if !strings.Contains(m.Text, target) {
					t.Errorf("HTML link %q missing from the text part", href)
				}
			}
			if strings.Contains(m.HTML, "ZgotmplZ") {
				t.Errorf("html/template rejected a value:\n%s", m.HTML)
			}
			if strings.Contains(m.Text, "\n\n\n") || strings.Contains(m.Text, "<no value>") {
				t.Errorf("Text is untidy:\n%q", m.Text)
			}
		})
	}
}

func hrefs(h string) []string {
	var out []string
	for _, part := range strings.Split(h, `href="`)[1:] {
		out = append(out, html.UnescapeString(part[:strings.IndexByte(part, '"')]))
	}
	return out
}

func TestRenderOptionalFields(t *testing.T) {
	tp := newTestTemplates(t)
	tests := []struct {
		name    string
		kind    Kind
		data    Data
		want    []string // in Text
		notWant []string // in Text
	}{
		{"welcome without link", KindWelcome, Data{}, []string{"Hello,", "account is ready"}, []string{"http", "confirm your email", "expires"}},
		{"welcome with name", KindWelcome, Data{Name: "Ada"}, []string{"Hi Ada,"}, nil},
		{"verify without expiry", KindVerifyEmail, Data{Link: "https://x.example/v"}, []string{"https://x.example/v"}, []string{"expires"}},
		{"reset 30 minutes", KindPasswordReset, Data{Link: "https://x.example/r", ExpiresIn: 30 * time.Minute}, []string{"expires in 30 minutes"}, nil},
		{"reset 1 hour", KindPasswordReset, Data{Link: "https://x.example/r", ExpiresIn: time.Hour}, []string{"expires in 1 hour."}, nil},
		{"locked without link", KindAccountLocked, Data{Until: time.Unix(0, 0)}, []string{"Thu, 01 Jan 1970 00:00:00 UTC", "reset your password"}, []string{"http", "IP address"}},
		{"name newline", KindWelcome, Data{Name: "Ada\r\nBcc: x"}, []string{"Hi Ada  Bcc: x,"}, []string{"Ada\r\n", "Ada\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := tp.Render(tt.kind, "ada@example.com", tt.data)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.want {
				if !strings.Contains(m.Text, s) {
					t.Errorf("Text lacks %q:\n%s", s, m.Text)
				}
			}
			for _, s := range tt.notWant {
				if strings.Contains(m.Text, s) {
					t.Errorf("Text contains %q:\n%s", s, m.Text)
				}
			}
		})
	}
}

func TestRenderNoSupportEmail(t *testing.T) {
	tp, err := NewTemplates(Brand{Product: "Acme ID"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := tp.Render(KindPasswordChanged, "a@example.com", Data{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Text, "contact Acme ID support") || strings.Contains(m.HTML, "mailto:") {
		t.Errorf("unexpected support wording:\n%s\n%s", m.Text, m.HTML)
	}
	if m.Subject != "Your password was changed - Acme ID" {
		t.Errorf("Subject = %q", m.Subject)
	}
}

func TestRenderLogo(t *testing.T) {
	tp, err := NewTemplates(Brand{Product: "Latchkey", LogoURL: "https://cdn.example.com/logo.png?a=1&b=2"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := tp.Render(KindWelcome, "a@example.com", Data{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.HTML, `<img src="https://cdn.example.com/logo.png?a=1&amp;b=2" alt="Latchkey"`) {
		t.Errorf("logo missing:\n%s", m.HTML)
	}
}

func TestRenderErrors(t *testing.T) {
	tp := newTestTemplates(t)
	link := "https://id.example.com/x"
	tests := []struct {
		name string
		kind Kind
		to   string
		data Data
		want string
	}{
		{"unknown kind", Kind("nope"), "a@example.com", Data{}, "unknown email kind"},
		{"bad recipient", KindWelcome, "not an address", Data{}, "invalid recipient"},
		{"verify needs link", KindVerifyEmail, "a@example.com", Data{}, "Link is required"},
		{"reset needs link", KindPasswordReset, "a@example.com", Data{}, "Link is required"},
		{"email change needs link", KindEmailChange, "a@example.com", Data{}, "Link is required"},
		{"javascript link", KindVerifyEmail, "a@example.com", Data{Link: "javascript:alert(1)"}, "absolute http(s) URL"},
		{"relative link", KindVerifyEmail, "a@example.com", Data{Link: "/verify?t=1"}, "absolute http(s) URL"},
		{"link with newline", KindVerifyEmail, "a@example.com", Data{Link: link + "\nmore"}, "Link"},
		{"locked needs until", KindAccountLocked, "a@example.com", Data{Link: link}, "Until is required"},
		{"notice needs new email", KindEmailChangedNotice, "a@example.com", Data{}, "NewEmail is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tp.Render(tt.kind, tt.to, tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestNewTemplatesErrors(t *testing.T) {
	tests := []struct {
		name string
		b    Brand
		want string
	}{
		{"no product", Brand{}, "Product is required"},
		{"product with newline", Brand{Product: "A\nB"}, "control characters"},
		{"bad color", Brand{Product: "L", PrimaryColor: "red;background:url(x)"}, "PrimaryColor"},
		{"bad logo", Brand{Product: "L", LogoURL: "javascript:alert(1)"}, "LogoURL"},
		{"bad support email", Brand{Product: "L", SupportEmail: "help"}, "SupportEmail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewTemplates(tt.b)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestParseTemplatesBroken(t *testing.T) {
	good := fstest.MapFS{}
	for _, name := range []string{"layout.html", "layout.txt"} {
		b, err := templateFS.ReadFile("templates/" + name)
		if err != nil {
			t.Fatal(err)
		}
		good["templates/"+name] = &fstest.MapFile{Data: b}
	}
	for _, k := range Kinds() {
		for _, ext := range []string{".html", ".txt"} {
			b, err := templateFS.ReadFile("templates/" + string(k) + ext)
			if err != nil {
				t.Fatal(err)
			}
			good["templates/"+string(k)+ext] = &fstest.MapFile{Data: b}
		}
	}
	b := Brand{Product: "L", PrimaryColor: defaultPrimaryColor}
	if _, err := parseTemplates(b, good); err != nil {
		t.Fatalf("copy of the embedded templates: %v", err)
	}
	tests := []struct {
		name, file, content string
	}{
		{"syntax error", "templates/welcome.html", `{{define "content"}}{{if}}{{end}}`},
		{"unknown field", "templates/verify_email.txt", `{{define "content"}}{{.Nope}}{{end}}`},
		{"no content", "templates/password_reset.html", `{{define "other"}}x{{end}}`},
		{"missing file", "templates/account_deleted.txt", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for k, v := range good {
				fsys[k] = v
			}
			if tt.content == "" {
				delete(fsys, tt.file)
			} else {
				fsys[tt.file] = &fstest.MapFile{Data: []byte(tt.content)}
			}
			if _, err := parseTemplates(b, fsys); err == nil {
				t.Fatal("parseTemplates succeeded")
			}
		})
	}
}

func TestHumanizeDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, ""},
		{-time.Hour, ""},
		{30 * time.Second, "less than a minute"},
		{time.Minute, "1 minute"},
		{30 * time.Minute, "30 minutes"},
		{59*time.Minute + 50*time.Second, "1 hour"},
		{time.Hour, "1 hour"},
		{90 * time.Minute, "1 hour and 30 minutes"},
		{2*time.Hour + time.Minute, "2 hours and 1 minute"},
		{24 * time.Hour, "24 hours"},
		{36 * time.Hour, "36 hours"},
		{48 * time.Hour, "2 days"},
		{7 * 24 * time.Hour, "7 days"},
		{49 * time.Hour, "49 hours"},
	}
	for _, tt := range tests {
		if got := humanizeDuration(tt.d); got != tt.want {
			t.Errorf("humanizeDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
