package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/latchkey/latchkey/internal/config"
	"github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/internal/metrics"
	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/internal/tracing"
	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
)

// mailer renders the account emails into the durable outbox, in the
// transaction of the change that causes them, so that
// accounts.Mailer.Send never waits for the mail server and no email is
// lost to a crash or sent for a change that rolled back.
type mailer struct {
	tpl    *mail.Templates
	outbox *mail.Outbox
}

var _ accounts.Mailer = (*mailer)(nil)

// newMailer sends through LATCHKEY_SMTP_URL, or writes messages to the log
// when it is unset (development).
func newMailer(cfg *config.Config, store storage.MailOutbox, sealer *secret.Sealer, m *metrics.Metrics, tr *tracing.Tracing, log *slog.Logger) (*mailer, error) {
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
	if tr.Enabled {
		sender = tracedSender{sender, tr.Tracer("latchkey/mail")}
	}
	tpl, err := mail.NewTemplates(mail.Brand{Product: cfg.BrandName, SupportEmail: cfg.SupportEmail,
		LogoURL: cfg.BrandLogoURL, PrimaryColor: cfg.BrandColor})
	if err != nil {
		return nil, fmt.Errorf("mail templates: %w", err)
	}
	outbox := mail.NewOutbox(store, sealer, sender, mail.OutboxOptions{
		Logger: log, OnSent: m.MailSent, OnFailed: m.MailFailed,
	})
	return &mailer{tpl: tpl, outbox: outbox}, nil
}

func (m *mailer) Send(ctx context.Context, kind mail.Kind, to string, data mail.Data) error {
	msg, err := m.tpl.Render(kind, to, data)
	if err != nil {
		return fmt.Errorf("rendering %s email: %w", kind, err)
	}
	return m.outbox.Enqueue(ctx, kind, msg)
}
