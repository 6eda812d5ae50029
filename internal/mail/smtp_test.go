package mail_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/internal/mail/mailtest"
)

const testFrom = "Latchkey <no-reply@example.com>"

func TestSMTPSendToMailtest(t *testing.T) {
	srv := mailtest.NewServer(t)
	tpl, err := mail.NewTemplates(mail.Brand{Product: "Latchkey", SupportEmail: "help@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	// A long link with characters quoted-printable must encode.
	link := "https://id.example.com/verify?token=" + strings.Repeat("aB3-_", 20) + "&next=%2Fhome"
	msg, err := tpl.Render(mail.KindVerifyEmail, "Ada Lovelace <ada@example.com>", mail.Data{
		Name: "Ada <script>", Link: link, ExpiresIn: 24 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := mail.NewSMTP(srv.URL(), testFrom)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}

	got := srv.Wait(t, "ada@example.com", "Verify your email address", 5*time.Second)
	if got.From != testFrom {
		t.Errorf("From = %q, want %q", got.From, testFrom)
	}
	if len(got.To) != 1 || got.To[0] != "ada@example.com" {
		t.Errorf("To = %v", got.To)
	}
	if got.Subject != msg.Subject {
		t.Errorf("Subject = %q, want %q", got.Subject, msg.Subject)
	}
	if strings.TrimSpace(got.Text) != strings.TrimSpace(msg.Text) {
		t.Errorf("Text differs:\n got %q\nwant %q", got.Text, msg.Text)
	}
	if strings.TrimSpace(got.HTML) != strings.TrimSpace(msg.HTML) {
		t.Errorf("HTML differs:\n got %q\nwant %q", got.HTML, msg.HTML)
	}
	if l := got.Link("https://id.example.com/verify"); l != link {
		t.Errorf("Link(prefix) = %q, want %q", l, link)
	}
	if l := got.Link(""); l != link {
		t.Errorf("Link(\"\") = %q, want %q", l, link)
	}
	if l := got.Link("https://other.example.com/"); l != "" {
		t.Errorf("Link(other) = %q, want \"\"", l)
	}
	raw := string(got.Raw)
	for _, h := range []string{"multipart/alternative", "Message-ID: <", "@example.com>", "Date: ", "Auto-Submitted: auto-generated"} {
		if !strings.Contains(raw, h) {
			t.Errorf("raw message lacks %q:\n%s", h, raw)
		}
	}
	if strings.Contains(raw, "go-mail") {
		t.Errorf("raw message advertises the mailer library:\n%s", raw)
	}
	if got.Auth != "" {
		t.Errorf("Auth = %q without credentials", got.Auth)
	}
}

func TestSMTPSendBodies(t *testing.T) {
	srv := mailtest.NewServer(t)
	s, err := mail.NewSMTP(srv.URL(), testFrom)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		m    mail.Message
	}{
		{"text only", mail.Message{To: "a@example.com", Subject: "text only", Text: "hello https://x.example/a\n"}},
		{"html only", mail.Message{To: "a@example.com", Subject: "html only", HTML: "<p>hello</p>"}},
		{"utf-8", mail.Message{To: "a@example.com", Subject: "Grüße – ✓", Text: "Grüße\n", HTML: "<p>Grüße</p>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Send(context.Background(), tt.m); err != nil {
				t.Fatal(err)
			}
			got := srv.Wait(t, "a@example.com", tt.m.Subject, 5*time.Second)
			if got.Subject != tt.m.Subject || strings.TrimSpace(got.Text) != strings.TrimSpace(tt.m.Text) ||
				strings.TrimSpace(got.HTML) != strings.TrimSpace(tt.m.HTML) {
				t.Errorf("got %+v\nwant %+v", got, tt.m)
			}
		})
	}
}

func TestSMTPSendRejectsBadMessages(t *testing.T) {
	s, err := mail.NewSMTP("smtp://127.0.0.1:1?starttls=none", testFrom)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []mail.Message{
		{To: "", Subject: "x", Text: "x"},
		{To: "not an address", Subject: "x", Text: "x"},
		{To: "a@example.com", Subject: "x"},
	} {
		if err := s.Send(context.Background(), m); !errors.Is(err, mail.ErrPermanent) {
			t.Errorf("Send(%+v) = %v, want ErrPermanent", m, err)
		}
	}
}

func TestSMTPAuth(t *testing.T) {
	srv := mailtest.NewServer(t)
	// user "bot@example.com", password "p@ss:/#?" percent-encoded.
	u := strings.Replace(srv.URL(), "smtp://", "smtp://bot%40example.com:p%40ss%3A%2F%23%3F@", 1)
	s, err := mail.NewSMTP(u, testFrom)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s.String(), "ss") {
		t.Errorf("String() = %q shows the password", s.String())
	}
	if err := s.Send(context.Background(), mail.Message{To: "a@example.com", Subject: "auth", Text: "x"}); err != nil {
		t.Fatal(err)
	}
	if got := srv.Wait(t, "a@example.com", "auth", 5*time.Second); got.Auth != "bot@example.com" {
		t.Errorf("Auth = %q", got.Auth)
	}
}

func TestSMTPStartTLSRequiredByDefault(t *testing.T) {
	srv := mailtest.NewServer(t) // offers no STARTTLS
	s, err := mail.NewSMTP(strings.TrimSuffix(srv.URL(), "?starttls=none"), testFrom)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), mail.Message{To: "a@example.com", Subject: "x", Text: "x"})
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("Send over a server without STARTTLS = %v, want a STARTTLS error", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d messages delivered in clear text", n)
	}

	// Opportunistic falls back to clear text.
	s, err = mail.NewSMTP(strings.Replace(srv.URL(), "starttls=none", "starttls=opportunistic", 1), testFrom)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), mail.Message{To: "a@example.com", Subject: "opp", Text: "x"}); err != nil {
		t.Fatal(err)
	}
	srv.Wait(t, "a@example.com", "opp", 5*time.Second)
}

func TestSMTPImplicitTLS(t *testing.T) {
	srv := mailtest.NewServer(t)
	addr := tlsProxy(t, srv.Addr())

	// The certificate is self-signed: verification must fail...
	s, err := mail.NewSMTP("smtps://user:pw@"+addr, testFrom)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), mail.Message{To: "a@example.com", Subject: "x", Text: "x"})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Send with an untrusted certificate = %v, want a certificate error", err)
	}

	// ...unless explicitly skipped; then AUTH PLAIN is allowed over TLS.
	s, err = mail.NewSMTP("smtps://user:pw@"+addr+"?skip_verify=true", testFrom)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), mail.Message{To: "a@example.com", Subject: "over tls", Text: "x"}); err != nil {
		t.Fatal(err)
	}
	if got := srv.Wait(t, "a@example.com", "over tls", 5*time.Second); got.Auth != "user" {
		t.Errorf("Auth = %q", got.Auth)
	}
}

func TestSMTPSendHonorsContext(t *testing.T) {
	s, err := mail.NewSMTP(stallServer(t), testFrom)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = s.Send(ctx, mail.Message{To: "a@example.com", Subject: "x", Text: "x"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Send took %v", d)
	}
}

// rejectSession refuses every recipient with 550.
type rejectSession struct{}

func (rejectSession) Mail(string, *smtp.MailOptions) error { return nil }
func (rejectSession) Rcpt(string, *smtp.RcptOptions) error {
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
}
func (rejectSession) Data(r io.Reader) error { _, err := io.Copy(io.Discard, r); return err }
func (rejectSession) Reset()                 {}
func (rejectSession) Logout() error          { return nil }

func TestSMTPPermanentError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return rejectSession{}, nil }))
	srv.Domain = "localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })

	s, err := mail.NewSMTP("smtp://"+l.Addr().String()+"?starttls=none", testFrom)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), mail.Message{To: "nobody@example.com", Subject: "x", Text: "x"})
	if !errors.Is(err, mail.ErrPermanent) || !strings.Contains(err.Error(), "550") {
		t.Fatalf("Send = %v, want ErrPermanent with the 550 reply", err)
	}
}

func TestSMTPTemporaryErrorIsNotPermanent(t *testing.T) {
	srv := mailtest.NewServer(t)
	srv.SetFailures(1)
	s, err := mail.NewSMTP(srv.URL(), testFrom)
	if err != nil {
		t.Fatal(err)
	}
	m := mail.Message{To: "a@example.com", Subject: "temp", Text: "x"}
	err = s.Send(context.Background(), m)
	if err == nil || errors.Is(err, mail.ErrPermanent) || !strings.Contains(err.Error(), "451") {
		t.Fatalf("Send = %v, want a temporary 451 error", err)
	}
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatalf("second Send = %v", err)
	}
	srv.Wait(t, "a@example.com", "temp", 5*time.Second)
}

func TestLogSender(t *testing.T) {
	logger, buf := newLogger()
	l := mail.NewLog(logger)
	m := mail.Message{To: "a@example.com", Subject: "Verify", Text: "open https://id.example.com/verify?token=tok123\n", HTML: "<p>secret html</p>"}
	if err := l.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, s := range []string{"level=INFO", "a@example.com", "Verify", "https://id.example.com/verify?token=tok123"} {
		if !strings.Contains(out, s) {
			t.Errorf("log lacks %q: %s", s, out)
		}
	}
}
