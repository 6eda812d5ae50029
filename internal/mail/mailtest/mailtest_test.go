package mailtest

import (
	"fmt"
	"net/smtp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func send(t *testing.T, s *Server, from string, to []string, raw string) error {
	t.Helper()
	return smtp.SendMail(s.Addr(), nil, from, to, []byte(strings.ReplaceAll(raw, "\n", "\r\n")))
}

func TestParseEncodings(t *testing.T) {
	tests := []struct {
		name                      string
		raw                       string
		from, subject, text, html string
	}{
		{
			name: "plain 7bit",
			raw:  "From: a@example.com\nTo: b@example.com\nSubject: hi\n\nhello\nworld\n",
			from: "a@example.com", subject: "hi", text: "hello\nworld\n",
		},
		{
			name: "encoded words and base64 html",
			raw: "From: =?UTF-8?q?Gr=C3=BC=C3=9Fe?= <a@example.com>\nSubject: =?UTF-8?b?4pyTIGRvbmU=?=\n" +
				"MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\n" +
				"PHA+aGk8L3A+\n",
			from: "Grüße <a@example.com>", subject: "✓ done", html: "<p>hi</p>",
		},
		{
			name: "multipart alternative quoted-printable",
			raw: "From: \"Latchkey\" <no-reply@example.com>\nSubject: link\nMIME-Version: 1.0\n" +
				"Content-Type: multipart/alternative; boundary=XYZ\n\n" +
				"--XYZ\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: quoted-printable\n\n" +
				"go to https://id.example.com/v?t=3Dabc=\ndef.\n" +
				"--XYZ\nContent-Type: text/html; charset=UTF-8\nContent-Transfer-Encoding: quoted-printable\n\n" +
				"<a href=3D\"x\">x</a>\n" +
				"--XYZ--\n",
			from: "Latchkey <no-reply@example.com>", subject: "link",
			text: "go to https://id.example.com/v?t=abcdef.", html: "<a href=\"x\">x</a>",
		},
		{
			name: "nested multipart with attachment",
			raw: "From: a@example.com\nSubject: nested\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=OUT\n\n" +
				"--OUT\nContent-Type: multipart/alternative; boundary=IN\n\n" +
				"--IN\nContent-Type: text/plain\n\nplain\n--IN\nContent-Type: text/html\n\n<b>html</b>\n--IN--\n" +
				"--OUT\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0=\n--OUT--\n",
			from: "a@example.com", subject: "nested", text: "plain", html: "<b>html</b>",
		},
	}
	s := NewServer(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			to := fmt.Sprintf("rcpt%d@example.com", i)
			if err := send(t, s, "envelope@example.com", []string{to}, tt.raw); err != nil {
				t.Fatal(err)
			}
			c := s.Wait(t, to, tt.subject, 5*time.Second)
			if c.From != tt.from || c.Subject != tt.subject || c.Text != tt.text || c.HTML != tt.html {
				t.Errorf("got From=%q Subject=%q Text=%q HTML=%q\nwant From=%q Subject=%q Text=%q HTML=%q",
					c.From, c.Subject, c.Text, c.HTML, tt.from, tt.subject, tt.text, tt.html)
			}
			if len(c.To) != 1 || c.To[0] != to {
				t.Errorf("To = %v", c.To)
			}
			if !strings.Contains(string(c.Raw), "Subject:") {
				t.Errorf("Raw = %q", c.Raw)
			}
		})
	}
}

func TestLink(t *testing.T) {
	c := Captured{Text: "Hi,\n\nopen https://id.example.com/verify?token=abc&x=1.\n" +
		"or (http://localhost:8080/reset?t=z), or <https://id.example.com/other>\n"}
	tests := []struct{ prefix, want string }{
		{"", "https://id.example.com/verify?token=abc&x=1"},
		{"https://id.example.com/verify", "https://id.example.com/verify?token=abc&x=1"},
		{"http://localhost:8080/", "http://localhost:8080/reset?t=z"},
		{"https://id.example.com/other", "https://id.example.com/other"},
		{"https://nope.example.com", ""},
	}
	for _, tt := range tests {
		if got := c.Link(tt.prefix); got != tt.want {
			t.Errorf("Link(%q) = %q, want %q", tt.prefix, got, tt.want)
		}
	}
	if got := (Captured{Text: "no links here"}).Link(""); got != "" {
		t.Errorf("Link = %q", got)
	}
}

func TestWaitReturnsEachMessageOnce(t *testing.T) {
	s := NewServer(t)
	for i := range 2 {
		raw := fmt.Sprintf("From: a@example.com\nSubject: Reset your password\n\nlink https://x.example/%d\n", i)
		if err := send(t, s, "a@example.com", []string{"Ada@Example.com"}, raw); err != nil {
			t.Fatal(err)
		}
	}
	first := s.Wait(t, "ada@example.com", "Reset", time.Second)
	second := s.Wait(t, "ada@example.com", "Reset", time.Second)
	if first.Link("") != "https://x.example/0" || second.Link("") != "https://x.example/1" {
		t.Errorf("got %q then %q", first.Link(""), second.Link(""))
	}
	if n := len(s.Messages()); n != 2 {
		t.Errorf("Messages() has %d entries", n)
	}
}

func TestWaitForLateMessage(t *testing.T) {
	s := NewServer(t)
	go func() {
		time.Sleep(100 * time.Millisecond)
		_ = smtp.SendMail(s.Addr(), nil, "a@example.com", []string{"late@example.com"},
			[]byte("From: a@example.com\r\nSubject: late\r\n\r\nbody\r\n"))
	}()
	if c := s.Wait(t, "late@example.com", "", 5*time.Second); c.Subject != "late" {
		t.Errorf("Subject = %q", c.Subject)
	}
}

// fatalTB records Fatalf and ends the goroutine like testing.T does.
type fatalTB struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.msg = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func TestWaitTimeoutListsMessages(t *testing.T) {
	s := NewServer(t)
	if err := send(t, s, "a@example.com", []string{"bob@example.com"}, "From: a@example.com\nSubject: Welcome\n\nx\n"); err != nil {
		t.Fatal(err)
	}
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Wait(f, "ada@example.com", "Verify", 50*time.Millisecond)
	}()
	<-done
	for _, want := range []string{`"ada@example.com"`, `"Verify"`, "bob@example.com", `"Welcome"`} {
		if !strings.Contains(f.msg, want) {
			t.Errorf("failure message %q lacks %q", f.msg, want)
		}
	}
}

func TestSetFailures(t *testing.T) {
	s := NewServer(t)
	s.SetFailures(2)
	raw := "From: a@example.com\nSubject: retry\n\nx\n"
	for i := range 2 {
		err := send(t, s, "a@example.com", []string{"b@example.com"}, raw)
		if err == nil || !strings.Contains(err.Error(), "451") {
			t.Fatalf("delivery %d: err = %v, want 451", i, err)
		}
	}
	if err := send(t, s, "a@example.com", []string{"b@example.com"}, raw); err != nil {
		t.Fatalf("third delivery: %v", err)
	}
	if n := len(s.Messages()); n != 1 {
		t.Errorf("%d messages captured, want 1", n)
	}
}

func TestAuthAndMultipleRecipients(t *testing.T) {
	s := NewServer(t)
	auth := smtp.PlainAuth("", "someone", "anything", "127.0.0.1")
	err := smtp.SendMail(s.Addr(), auth, "a@example.com", []string{"b@example.com", "c@example.com"},
		[]byte("From: a@example.com\r\nSubject: multi\r\n\r\nx\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := s.Wait(t, "c@example.com", "multi", time.Second)
	if c.Auth != "someone" || len(c.To) != 2 {
		t.Errorf("Auth = %q, To = %v", c.Auth, c.To)
	}
	if !strings.HasPrefix(s.URL(), "smtp://127.0.0.1:") || !strings.HasSuffix(s.URL(), "?starttls=none") {
		t.Errorf("URL() = %q", s.URL())
	}
}
