// Package mail sends Latchkey's transactional email: account verification,
// password resets, security notices.
//
// The pieces fit together like this:
//
//	tpl, _ := mail.NewTemplates(mail.Brand{Product: "Latchkey", SupportEmail: "support@example.com"})
//	sender, _ := mail.NewSMTP(os.Getenv("LATCHKEY_SMTP_URL"), "Latchkey <no-reply@example.com>")
//	outbox := mail.NewOutbox(store, sealer, sender, mail.OutboxOptions{Logger: log})
//	go outbox.Run(ctx) // in every process: workers share the rows
//	msg, _ := tpl.Render(mail.KindVerifyEmail, "ada@example.com", mail.Data{Link: link, ExpiresIn: 24 * time.Hour})
//	err := store.InTx(ctx, func(ctx context.Context) error {
//		// ... the change that causes the email ...
//		return outbox.Enqueue(ctx, mail.KindVerifyEmail, msg) // sent iff this commits
//	})
//
// When SMTP is not configured, use NewLog instead of NewSMTP: messages are
// written to the log so that a developer can follow the links in them.
//
// Message bodies contain secrets (verification and reset tokens); nothing in
// this package logs a body except LogSender, which exists for development.
package mail

import (
	"context"
	"errors"
)

// Message is one email.
type Message struct {
	// To is the recipient, a bare address or "Name <addr>".
	To string
	// Subject is the subject line.
	Subject string
	// Text is the plain-text part. It should contain every link of the HTML part.
	Text string
	// HTML is the HTML part (optional).
	HTML string
}

// Sender delivers one message (synchronously).
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// ErrPermanent marks a delivery failure that will not go away by retrying,
// such as a 5xx SMTP reply to RCPT TO ("no such user"). Senders wrap it
// (errors.Is(err, ErrPermanent) reports true) and Queue does not retry such
// failures.
var ErrPermanent = errors.New("mail: permanent delivery failure")
