package accounts

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/storage"
)

// SessionMeta describes the browser that signs in.
type SessionMeta struct {
	AMR       []string // authentication methods, e.g. ["pwd"]
	IP        string
	UserAgent string
}

// StartSession creates a browser session for user and returns the cookie
// token (shown once; only its hash is stored).
func (s *Service) StartSession(ctx context.Context, user *storage.User, meta SessionMeta) (string, *storage.BrowserSession, error) {
	token := secret.Token(32)
	now := s.now().UTC()
	sess := &storage.BrowserSession{
		ID:         secret.Token(16),
		TokenHash:  secret.Hash(token),
		UserID:     user.ID,
		AuthTime:   now.Truncate(time.Second),
		AMR:        meta.AMR,
		IP:         meta.IP,
		UserAgent:  truncate(meta.UserAgent, 512),
		CreatedAt:  now,
		LastSeenAt: now,
		ExpiresAt:  now.Add(s.ttl),
	}
	// A session starts only when a sign-in succeeded (whatever its
	// method: password, passkey, upstream), so this is the one place
	// last_login_at is recorded; both writes commit together.
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreateBrowserSession(ctx, sess); err != nil {
			return fmt.Errorf("creating session: %w", err)
		}
		if err := s.store.RecordLastLogin(ctx, user.ID, now); err != nil {
			return fmt.Errorf("recording the sign-in: %w", err)
		}
		return nil
	})
	if err != nil {
		return "", nil, err
	}
	user.LastLoginAt = &now
	return token, sess, nil
}

// Session resolves a cookie token to its live session and active user.
func (s *Service) Session(ctx context.Context, token string) (*storage.BrowserSession, *storage.User, error) {
	if token == "" || len(token) > 128 {
		return nil, nil, ErrNoSession
	}
	sess, err := s.store.GetBrowserSession(ctx, secret.Hash(token))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil, ErrNoSession
	}
	if err != nil {
		return nil, nil, fmt.Errorf("loading session: %w", err)
	}
	user, err := s.GetUser(ctx, sess.UserID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil, ErrNoSession
	}
	if err != nil {
		return nil, nil, err
	}
	return sess, user, nil
}

// EndSession signs one browser session out.
func (s *Service) EndSession(ctx context.Context, sessionID string) error {
	if err := s.store.DeleteBrowserSession(ctx, sessionID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("ending session: %w", err)
	}
	return nil
}

// Consent returns the scopes user has granted client (nil when none).
func (s *Service) Consent(ctx context.Context, userID, clientID string) ([]string, error) {
	c, err := s.store.GetConsent(ctx, userID, clientID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("loading consent: %w", err)
	}
	return c.Scopes, nil
}

// GrantConsent remembers that user granted scopes to client, merged with
// what was granted before.
func (s *Service) GrantConsent(ctx context.Context, userID, clientID string, scopes []string) error {
	prev, err := s.Consent(ctx, userID, clientID)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	return s.store.UpsertConsent(ctx, &storage.Consent{
		UserID: userID, ClientID: clientID, Scopes: union(prev, scopes), GrantedAt: now, UpdatedAt: now,
	})
}

func union(a, b []string) []string {
	seen := make(map[string]bool, len(a)+len(b))
	out := make([]string, 0, len(a)+len(b))
	for _, s := range append(append([]string{}, a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
