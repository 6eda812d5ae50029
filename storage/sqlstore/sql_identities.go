package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/latchkey/latchkey/storage"
)

var _ storage.Identities = (*SQLStore)(nil)

const identityCols = `upstream_id, subject, user_id, email, created_at, last_used_at`

func scanIdentity(r rowScanner) (*storage.Identity, error) {
	var i storage.Identity
	if err := r.Scan(&i.UpstreamID, &i.Subject, &i.UserID, &i.Email, timeDest{&i.CreatedAt}, timeDest{&i.LastUsedAt}); err != nil {
		return nil, err
	}
	return &i, nil
}

// CreateIdentity links an upstream identity to a user.
func (s *SQLStore) CreateIdentity(ctx context.Context, i *storage.Identity) error {
	if i.CreatedAt.IsZero() {
		i.CreatedAt = time.Now()
	}
	if i.LastUsedAt.IsZero() {
		i.LastUsedAt = i.CreatedAt
	}
	i.CreatedAt, i.LastUsedAt = normTime(i.CreatedAt), normTime(i.LastUsedAt)
	if _, err := s.GetUser(ctx, i.UserID); err != nil {
		return fmt.Errorf("storage: create identity: %w", err)
	}
	_, err := s.exec(ctx, `INSERT INTO identities (`+identityCols+`) VALUES (?, ?, ?, ?, ?, ?)`,
		i.UpstreamID, i.Subject, i.UserID, i.Email, s.ts(i.CreatedAt), s.ts(i.LastUsedAt))
	if err != nil {
		return fmt.Errorf("storage: create identity: %w", s.mapErr(err))
	}
	return nil
}

// GetIdentity finds a linked identity.
func (s *SQLStore) GetIdentity(ctx context.Context, upstreamID, subject string) (*storage.Identity, error) {
	i, err := scanIdentity(s.queryRow(ctx, `SELECT `+identityCols+` FROM identities WHERE upstream_id = ? AND subject = ?`,
		upstreamID, subject))
	if err != nil {
		return nil, fmt.Errorf("storage: get identity: %w", s.mapErr(err))
	}
	return i, nil
}

// TouchIdentity records a sign-in.
func (s *SQLStore) TouchIdentity(ctx context.Context, upstreamID, subject string, at time.Time) error {
	return s.updateOne(ctx, "touch identity", `UPDATE identities SET last_used_at = ? WHERE upstream_id = ? AND subject = ?`,
		s.ts(at), upstreamID, subject)
}

// ListUserIdentities returns a user's identities, oldest first.
func (s *SQLStore) ListUserIdentities(ctx context.Context, userID string) ([]storage.Identity, error) {
	rows, err := s.query(ctx, `SELECT `+identityCols+` FROM identities WHERE user_id = ? ORDER BY created_at, upstream_id, subject`, userID)
	if err != nil {
		return nil, fmt.Errorf("storage: list identities: %w", s.mapErr(err))
	}
	defer rows.Close()
	out := []storage.Identity{}
	for rows.Next() {
		i, err := scanIdentity(rows)
		if err != nil {
			return nil, fmt.Errorf("storage: list identities: %w", s.mapErr(err))
		}
		out = append(out, *i)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: list identities: %w", s.mapErr(err))
	}
	return out, nil
}

// DeleteIdentity unlinks an identity; ErrNotFound when missing.
func (s *SQLStore) DeleteIdentity(ctx context.Context, upstreamID, subject string) error {
	return s.updateOne(ctx, "delete identity", `DELETE FROM identities WHERE upstream_id = ? AND subject = ?`, upstreamID, subject)
}
