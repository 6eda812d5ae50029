package mail

import (
	"strings"
	"testing"

	gomail "github.com/wneessen/go-mail"
)

const from = "Latchkey <no-reply@example.com>"

func TestNewSMTPURL(t *testing.T) {
	tests := []struct {
		url  string
		want SMTP // from is not compared
	}{
		{"smtp://mail.example.com", SMTP{host: "mail.example.com", port: 587, starttls: "required"}},
		{"SMTP://mail.example.com:2525", SMTP{host: "mail.example.com", port: 2525, starttls: "required"}},
		{"smtp://mail.example.com/", SMTP{host: "mail.example.com", port: 587, starttls: "required"}},
		{"smtps://mail.example.com", SMTP{host: "mail.example.com", port: 465, implicit: true}},
		{"smtps://mail.example.com:4650", SMTP{host: "mail.example.com", port: 4650, implicit: true}},
		{"smtp://[::1]:25?starttls=none", SMTP{host: "::1", port: 25, starttls: "none"}},
		{"smtp://relay:25?starttls=opportunistic", SMTP{host: "relay", port: 25, starttls: "opportunistic"}},
		{"smtp://relay?starttls=REQUIRED", SMTP{host: "relay", port: 587, starttls: "required"}},
		{"smtp://relay?skip_verify=true", SMTP{host: "relay", port: 587, starttls: "required", skipVerify: true}},
		{"smtps://relay?skip_verify=false", SMTP{host: "relay", port: 465, implicit: true}},
		{
			"smtp://apikey:s3cr%40t%2Fx@smtp.example.com",
			SMTP{host: "smtp.example.com", port: 587, starttls: "required", user: "apikey", pass: "s3cr@t/x", auth: gomail.SMTPAuthAutoDiscover},
		},
		{
			"smtps://user%40example.com:pw@smtp.example.com",
			SMTP{host: "smtp.example.com", port: 465, implicit: true, user: "user@example.com", pass: "pw", auth: gomail.SMTPAuthAutoDiscover},
		},
		{
			"smtp://u:pass1@127.0.0.1:1025?starttls=none",
			SMTP{host: "127.0.0.1", port: 1025, starttls: "none", user: "u", pass: "pass1", auth: gomail.SMTPAuthPlain},
		},
		{
			"smtp://u:pass2@relay?auth=login",
			SMTP{host: "relay", port: 587, starttls: "required", user: "u", pass: "pass2", auth: gomail.SMTPAuthLogin},
		},
		{
			"smtp://u@relay?starttls=opportunistic&auth=auto",
			SMTP{host: "relay", port: 587, starttls: "opportunistic", user: "u", auth: gomail.SMTPAuthAutoDiscover},
		},
		{"  smtp://relay  ", SMTP{host: "relay", port: 587, starttls: "required"}},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			s, err := NewSMTP(tt.url, from)
			if err != nil {
				t.Fatal(err)
			}
			got := *s
			got.from = nil
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if s.from.Address != "no-reply@example.com" || s.from.Name != "Latchkey" {
				t.Errorf("from = %v", s.from)
			}
			if tt.want.pass != "" && strings.Contains(s.String(), tt.want.pass) {
				t.Errorf("String() = %q contains the password", s.String())
			}
		})
	}
}

func TestNewSMTPString(t *testing.T) {
	s, err := NewSMTP("smtp://us%3Aer:hunter2@relay:25?starttls=opportunistic&skip_verify=true", from)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.String(), "smtp://us%3Aer@relay:25?starttls=opportunistic&skip_verify=true"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestNewSMTPErrors(t *testing.T) {
	const secret = "s3cr3tpw"
	tests := []struct {
		name string
		url  string
		want string
	}{
		{"empty", "", "empty"},
		{"no scheme", "mail.example.com:587", "scheme"},
		{"no scheme with userinfo", "user:" + secret + "@mail.example.com", "scheme"},
		{"bad scheme", "http://mail.example.com", `unsupported scheme "http"`},
		{"bad scheme with userinfo", "imap://user:" + secret + "@mail.example.com", "unsupported scheme"},
		{"missing host", "smtp://", "no host"},
		{"missing host with userinfo", "smtp://user:" + secret + "@", "no host"},
		{"missing host with port", "smtp://:587", "no host"},
		{"opaque", "smtp:mail.example.com", "smtp://host"},
		{"port not a number", "smtp://user:" + secret + "@host:abc", "not a valid URL"},
		{"port zero", "smtp://user:" + secret + "@host:0", "invalid port"},
		{"port too big", "smtp://host:65536", "invalid port"},
		{"unencoded slash in password", "smtp://user:" + secret[:4] + "/" + secret[4:] + "@host", "not a valid URL"},
		{"unencoded hash in password", "smtp://user:1234#" + secret + "@host", "fragment"},
		{"unencoded question mark in password", "smtp://user:" + secret + "?x@host", "not a valid URL"},
		{"digit password slash", "smtp://user:1234/" + secret + "@host", "path"},
		{"bad escape in password", "smtp://user:" + secret + "%zz@host", "not a valid URL"},
		{"password without user", "smtp://:" + secret + "@host", "no user name"},
		{"bad starttls", "smtp://user:" + secret + "@host?starttls=yes", `starttls="yes"`},
		{"starttls on smtps", "smtps://user:" + secret + "@host?starttls=none", "does not apply"},
		{"bad skip_verify", "smtp://host?skip_verify=maybe", "skip_verify"},
		{"unknown parameter", "smtp://user:" + secret + "@host?tls=false", `unknown query parameter "tls"`},
		{"repeated parameter", "smtp://host?starttls=none&starttls=required", "more than once"},
		{"bad auth", "smtp://user:" + secret + "@host?auth=xoauth", `auth="xoauth"`},
		{"auth without user", "smtp://host?auth=plain", "without a user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSMTP(tt.url, from)
			if err == nil {
				t.Fatalf("NewSMTP(%q) = %+v, want error", tt.url, s)
			}
			msg := err.Error()
			if !strings.Contains(msg, "LATCHKEY_SMTP_URL") {
				t.Errorf("error %q does not name LATCHKEY_SMTP_URL", msg)
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not contain %q", msg, tt.want)
			}
			// Not even a fragment of the password.
			for i := 0; i+4 <= len(secret); i++ {
				if strings.Contains(msg, secret[i:i+4]) {
					t.Errorf("error %q contains part of the password", msg)
				}
			}
		})
	}
}

func TestNewSMTPBadFrom(t *testing.T) {
	for _, f := range []string{"", "no-reply", "Latchkey <no-reply@example.com"} {
		if _, err := NewSMTP("smtp://relay", f); err == nil || !strings.Contains(err.Error(), "From") {
			t.Errorf("NewSMTP(from=%q) err = %v, want a From error", f, err)
		}
	}
}
