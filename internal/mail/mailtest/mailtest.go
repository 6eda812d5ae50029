// Package mailtest runs a real SMTP server in the test process and captures
// what it receives, so tests can exercise mail.SMTP end to end and follow the
// links in the messages.
//
//	srv := mailtest.NewServer(t)
//	sender, _ := mail.NewSMTP(srv.URL(), "Latchkey <no-reply@example.com>")
//	// ... code under test sends a verification email ...
//	msg := srv.Wait(t, "ada@example.com", "Verify your email", 5*time.Second)
//	link := msg.Link("https://id.example.com/verify")
package mailtest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Captured is one message the server accepted.
type Captured struct {
	// From is the decoded From header in the form "Name <addr>" (no quotes
	// around the name) or "addr", e.g. "Latchkey <no-reply@example.com>".
	From string
	// To holds the envelope recipients (RCPT TO), bare addresses.
	To []string
	// Subject is the decoded Subject header.
	Subject string
	// Text and HTML are the decoded text/plain and text/html parts ("" if absent).
	Text string
	HTML string
	// Raw is the message as received (headers and body).
	Raw []byte
	// Auth is the user name the client authenticated as ("" without AUTH).
	Auth string
}

var urlRE = regexp.MustCompile(`https?://[^\s<>"']+`)

// Link returns the first URL in the text part that starts with prefix; with
// prefix "", the first http(s) URL. It returns "" when there is none.
// Trailing sentence punctuation is not part of the URL.
func (c Captured) Link(prefix string) string {
	for _, u := range urlRE.FindAllString(c.Text, -1) {
		u = strings.TrimRight(u, ".,;:!?)]")
		if strings.HasPrefix(u, prefix) {
			return u
		}
	}
	return ""
}

// Server is an SMTP server on 127.0.0.1 without TLS. It accepts any AUTH
// PLAIN credentials, or none, and any sender and recipients.
type Server struct {
	srv  *smtp.Server
	addr string

	mu       sync.Mutex
	msgs     []Captured
	claimed  []bool // per message: already returned by Wait
	failures int
	errs     []error // messages that could not be parsed
}

// NewServer starts a server on 127.0.0.1:0; t.Cleanup closes it.
func NewServer(t testing.TB) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	s := &Server{addr: l.Addr().String()}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &session{s: s}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.MaxMessageBytes = 10 << 20
	srv.MaxRecipients = 100
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	// Logging through t after the test ends panics; connection errors are
	// not interesting anyway.
	srv.ErrorLog = log.New(io.Discard, "", 0)
	s.srv = srv
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// URL returns an address for mail.NewSMTP: "smtp://127.0.0.1:PORT?starttls=none".
func (s *Server) URL() string {
	return "smtp://" + s.addr + "?starttls=none"
}

// Addr returns "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.addr }

// Messages returns every message received so far, oldest first.
func (s *Server) Messages() []Captured {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Captured, len(s.msgs))
	copy(out, s.msgs)
	return out
}

// SetFailures makes the next n deliveries fail with "451 4.3.0" (a temporary
// error) after the message data was sent, so that clients retry.
func (s *Server) SetFailures(n int) {
	s.mu.Lock()
	s.failures = n
	s.mu.Unlock()
}

// Wait polls until a message to recipient to (case-insensitive; "" = any)
// whose subject contains subjectContains has arrived, and returns it. Each
// message is returned by at most one Wait, so a test expecting two similar
// emails calls Wait twice. On timeout it fails the test, listing what arrived.
func (s *Server) Wait(t testing.TB, to string, subjectContains string, timeout time.Duration) Captured {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if c, ok := s.claim(to, subjectContains); ok {
			return c
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.mu.Lock()
	var b strings.Builder
	for i, m := range s.msgs {
		fmt.Fprintf(&b, "\n  to=%v subject=%q", m.To, m.Subject)
		if s.claimed[i] {
			b.WriteString(" (already returned by Wait)")
		}
	}
	if len(s.msgs) == 0 {
		b.WriteString(" none")
	}
	for _, err := range s.errs {
		fmt.Fprintf(&b, "\n  unparsable message: %v", err)
	}
	s.mu.Unlock()
	t.Fatalf("mailtest: no message to %q with subject containing %q within %v; received:%s",
		to, subjectContains, timeout, b.String())
	return Captured{}
}

func (s *Server) claim(to, subjectContains string) (Captured, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, m := range s.msgs {
		if s.claimed[i] || !strings.Contains(m.Subject, subjectContains) {
			continue
		}
		if to != "" && !containsFold(m.To, to) {
			continue
		}
		s.claimed[i] = true
		return m, true
	}
	return Captured{}, false
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// session implements smtp.Session and smtp.AuthSession.
type session struct {
	s    *Server
	user string
	from string
	to   []string
}

func (x *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (x *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, _ string) error {
		x.user = username
		return nil
	}), nil
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	if x.s.failures > 0 {
		x.s.failures--
		return &smtp.SMTPError{
			Code:         451,
			EnhancedCode: smtp.EnhancedCode{4, 3, 0},
			Message:      "Temporary failure (mailtest.SetFailures)",
		}
	}
	c, err := parse(raw)
	if err != nil {
		x.s.errs = append(x.s.errs, err)
		c = Captured{Raw: raw}
	}
	c.To = append([]string(nil), x.to...)
	c.Auth = x.user
	x.s.msgs = append(x.s.msgs, c)
	x.s.claimed = append(x.s.claimed, false)
	return nil
}

func (x *session) Reset() {
	x.from = ""
	x.to = nil
}

func (x *session) Logout() error { return nil }

var wordDecoder = &mime.WordDecoder{}

// parse decodes headers and the text/plain and text/html parts of raw.
func parse(raw []byte) (Captured, error) {
	c := Captured{Raw: raw}
	m, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return c, fmt.Errorf("read message: %w", err)
	}
	c.From = decodeHeader(m.Header.Get("From"))
	if a, err := netmail.ParseAddress(c.From); err == nil {
		c.From = a.Address
		if a.Name != "" {
			c.From = a.Name + " <" + a.Address + ">"
		}
	}
	c.Subject = decodeHeader(m.Header.Get("Subject"))
	err = walk(&c, m.Header.Get("Content-Type"), m.Header.Get("Content-Transfer-Encoding"), m.Body)
	return c, err
}

func decodeHeader(v string) string {
	d, err := wordDecoder.DecodeHeader(v)
	if err != nil {
		return v
	}
	return d
}

func walk(c *Captured, contentType, encoding string, body io.Reader) error {
	if contentType == "" {
		contentType = "text/plain"
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("content type %q: %w", contentType, err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("multipart: %w", err)
			}
			if err := walk(c, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p); err != nil {
				return err
			}
		}
	}
	if mt != "text/plain" && mt != "text/html" {
		return nil // attachments and the like
	}
	b, err := decodeBody(encoding, body)
	if err != nil {
		return fmt.Errorf("%s part: %w", mt, err)
	}
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	if mt == "text/plain" && c.Text == "" {
		c.Text = text
	}
	if mt == "text/html" && c.HTML == "" {
		c.HTML = text
	}
	return nil
}

func decodeBody(encoding string, r io.Reader) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		return io.ReadAll(quotedprintable.NewReader(r))
	case "base64":
		return io.ReadAll(base64.NewDecoder(base64.StdEncoding, r)) // skips line breaks
	default: // 7bit, 8bit, binary
		return io.ReadAll(r)
	}
}
