package main

import (
	"context"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/provider/accounts"
)

// tracedHasher records a span per password hash or check: the most
// expensive step of a sign-in, worth seeing beside its request.
type tracedHasher struct {
	accounts.PasswordHasher
	tracer trace.Tracer
}

func (h tracedHasher) Hash(ctx context.Context, password string) (string, error) {
	ctx, sp := h.tracer.Start(ctx, "password.hash")
	defer sp.End()
	return h.PasswordHasher.Hash(ctx, password)
}

func (h tracedHasher) Verify(ctx context.Context, hash, password string) (bool, bool, error) {
	ctx, sp := h.tracer.Start(ctx, "password.verify")
	defer sp.End()
	return h.PasswordHasher.Verify(ctx, hash, password)
}

// tracedSender records a span per email delivery from the outbox.
type tracedSender struct {
	mail.Sender
	tracer trace.Tracer
}

func (s tracedSender) Send(ctx context.Context, m mail.Message) error {
	ctx, sp := s.tracer.Start(ctx, "mail.send", trace.WithSpanKind(trace.SpanKindClient))
	defer sp.End()
	err := s.Sender.Send(ctx, m)
	if err != nil {
		sp.RecordError(err)
		sp.SetStatus(codes.Error, "delivery failed")
	}
	return err
}
