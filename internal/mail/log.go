package mail

import (
	"context"
	"log/slog"
)

// LogSender writes messages to the log instead of sending them. It is for
// development, when SMTP is not configured: the recipient, subject and the
// full text body (with its links and tokens) are logged at Info level, so a
// developer can follow a verification link from the log. Never use it in
// production.
type LogSender struct {
	log *slog.Logger
}

// NewLog returns a LogSender writing to log (slog.Default() if nil).
func NewLog(log *slog.Logger) *LogSender {
	if log == nil {
		log = slog.Default()
	}
	return &LogSender{log: log}
}

// Send logs m. It never fails.
func (l *LogSender) Send(ctx context.Context, m Message) error {
	l.log.InfoContext(ctx, "mail not sent (SMTP not configured); message follows",
		slog.String("to", m.To),
		slog.String("subject", m.Subject),
		slog.String("text", m.Text),
	)
	return nil
}
