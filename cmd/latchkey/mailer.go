package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/latchkey/latchkey/internal/config"
	"github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/provider/accounts"
)

// mailer renders the account emails and hands them to the queue, so that
// accounts.Mailer.Send never waits for the mail server.
type mailer struct {
	tpl   *mail.Templates
	queue *mail.Queue
	log   *slog.Logger
}

var _ accounts.Mailer = (*mailer)(nil)

// newMailer sends through LATCHKEY_SMTP_URL, or writes messages to the log
// when it is unset (development).
func newMailer(cfg *config.Config, log *slog.Logger) (*mailer, error) {
	var sender mail.Sender
	if cfg.SMTPURL != "" {
		s, err := mail.NewSMTP(cfg.SMTPURL, cfg.MailFrom)
		if err != nil {
			return nil, err
		}
		sender = s
	} else {
		sender = mail.NewLog(log)
	}
	tpl, err := mail.NewTemplates(mail.Brand{Product: cfg.BrandName, SupportEmail: cfg.SupportEmail,
		LogoURL: cfg.BrandLogoURL, PrimaryColor: cfg.BrandColor})
	if err != nil {
		return nil, fmt.Errorf("mail templates: %w", err)
	}
	return &mailer{tpl: tpl, queue: mail.NewQueue(sender, mail.QueueOptions{Logger: log}), log: log}, nil
}

func (m *mailer) Send(_ context.Context, kind mail.Kind, to string, data mail.Data) {
	msg, err := m.tpl.Render(kind, to, data)
	if err != nil {
		m.log.Error("rendering email", "kind", kind, "err", err)
		return
	}
	if err := m.queue.Enqueue(msg); err != nil {
		m.log.Error("queueing email", "kind", kind, "to", to, "err", err)
	}
}
