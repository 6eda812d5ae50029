package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/latchkey/latchkey/storage"
)

var _ storage.Factors = (*SQLStore)(nil)

const factorCols = `id, user_id, type, name, secret, last_step, credential_id, credential, confirmed_at, created_at, last_used_at`

func scanFactor(r rowScanner) (*storage.Factor, error) {
	var f storage.Factor
	var step sql.NullInt64
	err := r.Scan(&f.ID, &f.UserID, &f.Type, &f.Name, &f.Secret, &step, &f.CredentialID, &f.Credential,
		nullTimeDest{&f.ConfirmedAt}, timeDest{&f.CreatedAt}, nullTimeDest{&f.LastUsedAt})
	if err != nil {
		return nil, err
	}
	if step.Valid {
		f.LastStep = &step.Int64
	}
	return &f, nil
}

// CreateFactor inserts f, filling CreatedAt when zero.
func (s *SQLStore) CreateFactor(ctx context.Context, f *storage.Factor) error {
	if f.CreatedAt.IsZero() {
		f.CreatedAt = time.Now()
	}
	f.CreatedAt, f.ConfirmedAt, f.LastUsedAt = normTime(f.CreatedAt), normTimePtr(f.ConfirmedAt), normTimePtr(f.LastUsedAt)
	var cred any
	if len(f.CredentialID) > 0 {
		cred = f.CredentialID
	}
	_, err := s.exec(ctx, `INSERT INTO factors (`+factorCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		f.ID, f.UserID, string(f.Type), f.Name, f.Secret, f.LastStep, cred, f.Credential,
		s.tsPtr(f.ConfirmedAt), s.ts(f.CreatedAt), s.tsPtr(f.LastUsedAt))
	if err != nil {
		return fmt.Errorf("storage: create factor: %w", s.mapErr(err))
	}
	return nil
}

// GetFactor returns one factor of the user.
func (s *SQLStore) GetFactor(ctx context.Context, userID, id string) (*storage.Factor, error) {
	f, err := scanFactor(s.queryRow(ctx, `SELECT `+factorCols+` FROM factors WHERE user_id = ? AND id = ?`, userID, id))
	if err != nil {
		return nil, fmt.Errorf("storage: get factor: %w", s.mapErr(err))
	}
	return f, nil
}

// ListFactors returns the user's factors, oldest first.
func (s *SQLStore) ListFactors(ctx context.Context, userID string) ([]storage.Factor, error) {
	rows, err := s.query(ctx, `SELECT `+factorCols+` FROM factors WHERE user_id = ? ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("storage: list factors: %w", s.mapErr(err))
	}
	defer rows.Close()
	var out []storage.Factor
	for rows.Next() {
		f, err := scanFactor(rows)
		if err != nil {
			return nil, fmt.Errorf("storage: list factors: %w", s.mapErr(err))
		}
		out = append(out, *f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: list factors: %w", s.mapErr(err))
	}
	return out, nil
}

// ConfirmFactor finishes an enrolment.
func (s *SQLStore) ConfirmFactor(ctx context.Context, userID, id string, at time.Time) error {
	return s.updateOne(ctx, "confirm factor",
		`UPDATE factors SET confirmed_at = ? WHERE user_id = ? AND id = ? AND confirmed_at IS NULL`, s.ts(at), userID, id)
}

// DeleteFactor removes one factor of the user.
func (s *SQLStore) DeleteFactor(ctx context.Context, userID, id string) error {
	return s.updateOne(ctx, "delete factor", `DELETE FROM factors WHERE user_id = ? AND id = ?`, userID, id)
}

// DeleteUserFactors removes every factor and recovery code of the user.
func (s *SQLStore) DeleteUserFactors(ctx context.Context, userID string) (int, error) {
	var n int
	err := s.InTx(ctx, func(ctx context.Context) error {
		res, err := s.exec(ctx, `DELETE FROM factors WHERE user_id = ?`, userID)
		if err != nil {
			return err
		}
		c, err := res.RowsAffected()
		if err != nil {
			return err
		}
		n = int(c)
		_, err = s.exec(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, userID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("storage: delete user factors: %w", s.mapErr(err))
	}
	return n, nil
}

// UseTOTPStep accepts a time step once: the condition on last_step makes
// the check and the write one statement, so concurrent requests with the
// same code cannot both pass.
func (s *SQLStore) UseTOTPStep(ctx context.Context, userID, id string, step int64, at time.Time) error {
	res, err := s.exec(ctx, `UPDATE factors SET last_step = ?, last_used_at = ?
		WHERE user_id = ? AND id = ? AND type = 'totp' AND (last_step IS NULL OR last_step < ?)`,
		step, s.ts(at), userID, id, step)
	if err != nil {
		return fmt.Errorf("storage: use totp step: %w", s.mapErr(err))
	}
	ok, err := affected(res)
	if err != nil {
		return fmt.Errorf("storage: use totp step: %w", err)
	}
	if ok {
		return nil
	}
	if _, err := s.GetFactor(ctx, userID, id); err != nil {
		return err
	}
	return fmt.Errorf("storage: use totp step: %w", storage.ErrReplay)
}

// ReplaceRecoveryCodes makes hashes the user's only codes.
func (s *SQLStore) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte, at time.Time) error {
	err := s.InTx(ctx, func(ctx context.Context) error {
		if _, err := s.exec(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, userID); err != nil {
			return err
		}
		for _, h := range hashes {
			if _, err := s.exec(ctx, `INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES (?, ?, ?)`,
				userID, h, s.ts(at)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("storage: replace recovery codes: %w", s.mapErr(err))
	}
	return nil
}

// ConsumeRecoveryCode uses a code once.
func (s *SQLStore) ConsumeRecoveryCode(ctx context.Context, userID string, hash []byte, at time.Time) error {
	return s.updateOne(ctx, "consume recovery code",
		`UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL`, s.ts(at), userID, hash)
}

// CountRecoveryCodes counts the unused codes.
func (s *SQLStore) CountRecoveryCodes(ctx context.Context, userID string) (int, error) {
	var n int
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL`, userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("storage: count recovery codes: %w", s.mapErr(err))
	}
	return n, nil
}

// UsersWithMFA reports which users have a confirmed factor.
func (s *SQLStore) UsersWithMFA(ctx context.Context, userIDs []string) (map[string]bool, error) {
	out := make(map[string]bool, len(userIDs))
	if len(userIDs) == 0 {
		return out, nil
	}
	args := make([]any, len(userIDs))
	for i, id := range userIDs {
		args[i] = id
	}
	rows, err := s.query(ctx, `SELECT DISTINCT user_id FROM factors WHERE confirmed_at IS NOT NULL AND user_id IN (?`+
		strings.Repeat(", ?", len(userIDs)-1)+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("storage: users with mfa: %w", s.mapErr(err))
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("storage: users with mfa: %w", s.mapErr(err))
		}
		out[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: users with mfa: %w", s.mapErr(err))
	}
	return out, nil
}

// GetFactorByCredentialID finds a passkey by its credential id.
func (s *SQLStore) GetFactorByCredentialID(ctx context.Context, credentialID []byte) (*storage.Factor, error) {
	if len(credentialID) == 0 {
		return nil, fmt.Errorf("storage: get factor by credential: %w", storage.ErrNotFound)
	}
	f, err := scanFactor(s.queryRow(ctx, `SELECT `+factorCols+` FROM factors WHERE credential_id = ?`, credentialID))
	if err != nil {
		return nil, fmt.Errorf("storage: get factor by credential: %w", s.mapErr(err))
	}
	return f, nil
}

// UpdateFactorCredential writes a passkey's record after a use.
func (s *SQLStore) UpdateFactorCredential(ctx context.Context, userID, id, credential string, at time.Time) error {
	return s.updateOne(ctx, "update factor credential",
		`UPDATE factors SET credential = ?, last_used_at = ? WHERE user_id = ? AND id = ?`, credential, s.ts(at), userID, id)
}
