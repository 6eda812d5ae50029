package mail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	netmail "net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

const (
	// envSMTPURL names the setting in error messages.
	envSMTPURL = "LATCHKEY_SMTP_URL"

	// dialTimeout bounds connecting to the server (TCP and TLS handshake).
	dialTimeout = 10 * time.Second
	// ioTimeout bounds each stage of the SMTP conversation after connecting.
	ioTimeout = 30 * time.Second
)

// TLS modes for smtp:// URLs (the starttls query parameter).
const (
	starttlsRequired      = "required"
	starttlsOpportunistic = "opportunistic"
	starttlsNone          = "none"
)

// SMTP sends mail through an SMTP server. It is safe for concurrent use: each
// Send opens its own connection.
type SMTP struct {
	host       string
	port       int
	implicit   bool   // smtps://: TLS from the first byte
	starttls   string // smtp:// only: required, opportunistic or none
	skipVerify bool
	user       string
	pass       string
	auth       gomail.SMTPAuthType // empty: no authentication
	from       *netmail.Address
}

// NewSMTP configures an SMTP sender from rawURL (the value of
// LATCHKEY_SMTP_URL) and the From address of every message (for example
// "Latchkey <no-reply@example.com>").
//
// URL forms:
//
//	smtp://[user[:password]@]host[:port]   STARTTLS, required by default; port 587
//	smtps://[user[:password]@]host[:port]  implicit TLS; port 465
//
// Special characters in the user name or password must be percent-encoded
// (for example @ as %40). Query parameters:
//
//	starttls=required|opportunistic|none
//	    smtp:// only. "required" (the default) refuses to talk to a server
//	    that does not offer STARTTLS. "opportunistic" upgrades when the server
//	    offers it and otherwise continues in clear text; "none" never upgrades.
//	    The last two are meant for a relay on localhost or for tests.
//	skip_verify=true
//	    INSECURE: do not verify the server's TLS certificate. For tests only;
//	    it lets anyone on the network path read the mail and the password.
//	auth=auto|plain|login|cram-md5|scram-sha-1|scram-sha-256
//	    SASL mechanism when a user is given. The default is "auto" (the
//	    strongest mechanism the server offers) over TLS, and "plain" with
//	    starttls=opportunistic|none. A password is never sent in clear text
//	    except to localhost: without TLS, plain and login fail for other hosts.
//
// Errors name LATCHKEY_SMTP_URL and never contain the password.
func NewSMTP(rawURL, from string) (*SMTP, error) {
	s, err := parseSMTPURL(rawURL)
	if err != nil {
		return nil, err
	}
	addr, err := netmail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("mail: invalid From address %q: %w", from, err)
	}
	s.from = addr
	return s, nil
}

func urlErr(format string, args ...any) error {
	return fmt.Errorf(envSMTPURL+": "+format, args...)
}

func parseSMTPURL(raw string) (*SMTP, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, urlErr("is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse errors quote the input, or fragments of it. When the URL
		// has user info, that may be (part of) the password, so say less.
		if strings.Contains(raw, "@") {
			return nil, urlErr("is not a valid URL (percent-encode special characters such as @ : / ? # in the user name and password)")
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, urlErr("is not a valid URL: %v", err)
	}
	// Never echo parts of u below: a malformed URL can put password
	// characters into the host, path or fragment. Only the scheme and query
	// parameter names/values are quoted.
	s := &SMTP{}
	switch strings.ToLower(u.Scheme) {
	case "smtp":
		s.port = 587
		s.starttls = starttlsRequired
	case "smtps":
		s.port = 465
		s.implicit = true
	case "":
		return nil, urlErr("has no scheme; want smtp://host or smtps://host")
	default:
		if u.User != nil || u.Opaque != "" {
			// "user:pass@host" parses with scheme "user"; don't echo it.
			return nil, urlErr("has an unsupported scheme; want smtp:// or smtps://")
		}
		return nil, urlErr("has unsupported scheme %q; want smtp:// or smtps://", u.Scheme)
	}
	if u.Opaque != "" {
		return nil, urlErr("must look like %s://host[:port]", u.Scheme)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, urlErr("must not have a path (percent-encode / in the user name and password)")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, urlErr("must not have a fragment (percent-encode # in the user name and password)")
	}
	s.host = u.Hostname()
	if s.host == "" {
		return nil, urlErr("has no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, urlErr("has an invalid port")
		}
		s.port = n
	}
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
		if s.user == "" {
			return nil, urlErr("has a password but no user name")
		}
	}

	q := u.Query()
	authName := ""
	for key, vals := range q {
		if len(vals) != 1 {
			return nil, urlErr("query parameter %q given more than once", key)
		}
		v := strings.ToLower(vals[0])
		switch key {
		case "starttls":
			if s.implicit {
				return nil, urlErr("starttls does not apply to smtps:// (implicit TLS)")
			}
			switch v {
			case starttlsRequired, starttlsOpportunistic, starttlsNone:
				s.starttls = v
			default:
				return nil, urlErr("starttls=%q: want required, opportunistic or none", vals[0])
			}
		case "skip_verify":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, urlErr("skip_verify=%q: want true or false", vals[0])
			}
			s.skipVerify = b
		case "auth":
			authName = v
		default:
			return nil, urlErr("unknown query parameter %q (known: starttls, skip_verify, auth)", key)
		}
	}

	if s.user != "" {
		at, err := authType(authName, s.implicit || s.starttls == starttlsRequired)
		if err != nil {
			return nil, err
		}
		s.auth = at
	} else if authName != "" {
		return nil, urlErr("auth=%q given without a user name", authName)
	}
	return s, nil
}

func authType(name string, tlsGuaranteed bool) (gomail.SMTPAuthType, error) {
	switch name {
	case "":
		if tlsGuaranteed {
			return gomail.SMTPAuthAutoDiscover, nil
		}
		// Auto-discovery never picks PLAIN/LOGIN without TLS, which would
		// rule out a local relay. PLAIN itself refuses clear text except to
		// localhost.
		return gomail.SMTPAuthPlain, nil
	case "auto":
		return gomail.SMTPAuthAutoDiscover, nil
	case "plain":
		return gomail.SMTPAuthPlain, nil
	case "login":
		return gomail.SMTPAuthLogin, nil
	case "cram-md5":
		return gomail.SMTPAuthCramMD5, nil
	case "scram-sha-1":
		return gomail.SMTPAuthSCRAMSHA1, nil
	case "scram-sha-256":
		return gomail.SMTPAuthSCRAMSHA256, nil
	default:
		return "", urlErr("auth=%q: want auto, plain, login, cram-md5, scram-sha-1 or scram-sha-256", name)
	}
}

// String describes the configuration without the password, for startup logs.
func (s *SMTP) String() string {
	var b strings.Builder
	if s.implicit {
		b.WriteString("smtps://")
	} else {
		b.WriteString("smtp://")
	}
	if s.user != "" {
		b.WriteString(url.User(s.user).String())
		b.WriteString("@")
	}
	b.WriteString(s.hostPort())
	var params []string
	if !s.implicit && s.starttls != starttlsRequired {
		params = append(params, "starttls="+s.starttls)
	}
	if s.skipVerify {
		params = append(params, "skip_verify=true")
	}
	if len(params) > 0 {
		b.WriteString("?" + strings.Join(params, "&"))
	}
	return b.String()
}

func (s *SMTP) hostPort() string {
	h := s.host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	return h + ":" + strconv.Itoa(s.port)
}

func (s *SMTP) client() (*gomail.Client, error) {
	opts := []gomail.Option{
		gomail.WithPort(s.port),
		gomail.WithTimeout(ioTimeout),
		gomail.WithTLSConfig(&tls.Config{
			ServerName:         s.host,
			MinVersion:         tls.VersionTLS12,
			InsecureSkipVerify: s.skipVerify, //nolint:gosec // opt-in, documented as test-only
		}),
	}
	if s.implicit {
		opts = append(opts, gomail.WithSSL())
	} else {
		switch s.starttls {
		case starttlsRequired:
			opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
		case starttlsOpportunistic:
			opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
		default:
			opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
		}
	}
	if s.auth != "" {
		opts = append(opts,
			gomail.WithSMTPAuth(s.auth),
			gomail.WithUsername(s.user),
			gomail.WithPassword(s.pass),
		)
	}
	return gomail.NewClient(s.host, opts...)
}

func (s *SMTP) message(m Message) (*gomail.Msg, error) {
	if strings.TrimSpace(m.To) == "" {
		return nil, fmt.Errorf("%w: message has no recipient", ErrPermanent)
	}
	if m.Text == "" && m.HTML == "" {
		return nil, fmt.Errorf("%w: message has no body", ErrPermanent)
	}
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(s.from)
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("%w: invalid recipient: %w", ErrPermanent, err)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageIDWithValue(messageID(s.from.Address))
	// RFC 3834: keeps vacation responders from answering.
	msg.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	switch {
	case m.HTML == "":
		msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	case m.Text == "":
		msg.SetBodyString(gomail.TypeTextHTML, m.HTML)
	default:
		// multipart/alternative: the last part is the preferred one.
		msg.SetBodyString(gomail.TypeTextPlain, m.Text)
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

func messageID(from string) string {
	domain := "localhost"
	if i := strings.LastIndexByte(from, '@'); i >= 0 && i < len(from)-1 {
		domain = from[i+1:]
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:]) + "@" + domain
}

// Send delivers m over a new connection: a multipart/alternative message
// with the text and HTML parts. Connecting (TCP and TLS) times out after 10s,
// each later step of the SMTP conversation after 30s.
//
// Send returns when ctx is done even if the server has not answered; the
// abandoned conversation then ends at the next timeout, and the message may
// or may not have been delivered. Failures the server reports as permanent
// (5xx) wrap ErrPermanent.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	msg, err := s.message(m)
	if err != nil {
		return err
	}
	c, err := s.client()
	if err != nil {
		return fmt.Errorf("mail: smtp client: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		dialCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dialTimeout)
		defer cancel()
		stop := context.AfterFunc(ctx, cancel) // abort a pending dial when ctx ends
		defer stop()
		done <- c.DialAndSendWithContext(dialCtx, msg)
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		return fmt.Errorf("mail: send to %s via %s: %w", m.To, s.hostPort(), ctx.Err())
	}
	if err == nil {
		return nil
	}
	var se *gomail.SendError
	if errors.As(err, &se) && se.ErrorCode() >= 500 && se.ErrorCode() <= 599 {
		return fmt.Errorf("mail: send to %s via %s: %w: %w", m.To, s.hostPort(), ErrPermanent, err)
	}
	return fmt.Errorf("mail: send to %s via %s: %w", m.To, s.hostPort(), err)
}
