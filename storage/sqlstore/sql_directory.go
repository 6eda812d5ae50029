package sqlstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/latchkey/latchkey/storage"
)

// This file implements Tiers, Audit and Directory (see directory.go).

// ---- tiers ----

const tierCols = `id, name, description, is_default, created_at, updated_at, require_mfa`

func scanTier(r rowScanner) (*storage.Tier, error) {
	var t storage.Tier
	err := r.Scan(&t.ID, &t.Name, &t.Description, &t.IsDefault, timeDest{&t.CreatedAt}, timeDest{&t.UpdatedAt}, &t.RequireMFA)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// tierErr maps a failed tier write: two transactions making a tier the
// default at once collide on the one-default index, which is a conflict
// (retry), not a duplicate name.
func (s *SQLStore) tierErr(err error) error {
	var pe *pq.Error
	if errors.As(err, &pe) && pe.Constraint == "tiers_default_key" {
		return fmt.Errorf("%w: %w", storage.ErrConflict, err)
	}
	if msg := err.Error(); strings.Contains(msg, "tiers.is_default") || strings.Contains(msg, "tiers_default_key") {
		return fmt.Errorf("%w: %w", storage.ErrConflict, err)
	}
	return s.mapErr(err)
}

// isFKViolation reports whether err is a foreign key violation.
func isFKViolation(err error) bool {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return pe.Code == "23503"
	}
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY {
		return true
	}
	return strings.Contains(err.Error(), "FOREIGN KEY constraint failed")
}

// clearDefaultTier makes every tier but keep stop being the default.
func (s *SQLStore) clearDefaultTier(ctx context.Context, keep string, at time.Time) error {
	_, err := s.exec(ctx, `UPDATE tiers SET is_default = ?, updated_at = ? WHERE is_default AND id <> ?`,
		false, s.ts(at), keep)
	return err
}

// CreateTier inserts t, filling CreatedAt/UpdatedAt when zero. When
// t.IsDefault, the previous default stops being one in the same
// transaction.
func (s *SQLStore) CreateTier(ctx context.Context, t *storage.Tier) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	if t.UpdatedAt.IsZero() {
		t.UpdatedAt = t.CreatedAt
	}
	t.CreatedAt, t.UpdatedAt = normTime(t.CreatedAt), normTime(t.UpdatedAt)
	return s.InTx(ctx, func(ctx context.Context) error {
		if t.IsDefault {
			if err := s.clearDefaultTier(ctx, t.ID, t.UpdatedAt); err != nil {
				return fmt.Errorf("storage: create tier %s: %w", t.ID, s.tierErr(err))
			}
		}
		_, err := s.exec(ctx, `INSERT INTO tiers (`+tierCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.Name, t.Description, t.IsDefault, s.ts(t.CreatedAt), s.ts(t.UpdatedAt), t.RequireMFA)
		if err != nil {
			return fmt.Errorf("storage: create tier %s: %w", t.ID, s.tierErr(err))
		}
		return nil
	})
}

// GetTier finds a tier by id.
func (s *SQLStore) GetTier(ctx context.Context, id string) (*storage.Tier, error) {
	t, err := scanTier(s.queryRow(ctx, `SELECT `+tierCols+` FROM tiers WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("storage: get tier %s: %w", id, s.mapErr(err))
	}
	return t, nil
}

// GetDefaultTier returns the default tier; ErrNotFound when none is.
func (s *SQLStore) GetDefaultTier(ctx context.Context) (*storage.Tier, error) {
	t, err := scanTier(s.queryRow(ctx, `SELECT `+tierCols+` FROM tiers WHERE is_default`))
	if err != nil {
		return nil, fmt.Errorf("storage: get default tier: %w", s.mapErr(err))
	}
	return t, nil
}

// ListTiers returns every tier ordered by name (ignoring case).
func (s *SQLStore) ListTiers(ctx context.Context) ([]storage.Tier, error) {
	rows, err := s.query(ctx, `SELECT `+tierCols+` FROM tiers ORDER BY lower(name), id`)
	if err != nil {
		return nil, fmt.Errorf("storage: list tiers: %w", s.mapErr(err))
	}
	defer rows.Close()
	var out []storage.Tier
	for rows.Next() {
		t, err := scanTier(rows)
		if err != nil {
			return nil, fmt.Errorf("storage: list tiers: %w", s.mapErr(err))
		}
		out = append(out, *t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: list tiers: %w", s.mapErr(err))
	}
	return out, nil
}

// UpdateTier writes name, description, is_default and require_mfa and advances
// UpdatedAt. When t.IsDefault, the previous default stops being one.
// ErrNotFound when missing, ErrDuplicate when the name is taken.
func (s *SQLStore) UpdateTier(ctx context.Context, t *storage.Tier) error {
	next := normTime(time.Now())
	err := s.InTx(ctx, func(ctx context.Context) error {
		if t.IsDefault {
			if err := s.clearDefaultTier(ctx, t.ID, next); err != nil {
				return fmt.Errorf("storage: update tier %s: %w", t.ID, s.tierErr(err))
			}
		}
		res, err := s.exec(ctx, `UPDATE tiers SET name = ?, description = ?, is_default = ?, require_mfa = ?, updated_at = ? WHERE id = ?`,
			t.Name, t.Description, t.IsDefault, t.RequireMFA, s.ts(next), t.ID)
		if err != nil {
			return fmt.Errorf("storage: update tier %s: %w", t.ID, s.tierErr(err))
		}
		ok, err := affected(res)
		if err != nil {
			return fmt.Errorf("storage: update tier %s: %w", t.ID, err)
		}
		if !ok {
			return fmt.Errorf("storage: update tier %s: %w", t.ID, storage.ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return err
	}
	t.UpdatedAt = next
	return nil
}

// DeleteTier removes a tier and its rate limits. ErrNotFound when missing;
// ErrConflict when it is the default or users are on it.
func (s *SQLStore) DeleteTier(ctx context.Context, id string) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		var isDefault bool
		if err := s.queryRow(ctx, `SELECT is_default FROM tiers WHERE id = ?`, id).Scan(&isDefault); err != nil {
			return fmt.Errorf("storage: delete tier %s: %w", id, s.mapErr(err))
		}
		if isDefault {
			return fmt.Errorf("storage: delete tier %s: it is the default tier: %w", id, storage.ErrConflict)
		}
		var used bool
		if err := s.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE tier_id = ?)`, id).Scan(&used); err != nil {
			return fmt.Errorf("storage: delete tier %s: %w", id, s.mapErr(err))
		}
		if used {
			return fmt.Errorf("storage: delete tier %s: users are on it: %w", id, storage.ErrConflict)
		}
		if err := s.updateOne(ctx, "delete tier "+id, `DELETE FROM tiers WHERE id = ?`, id); err != nil {
			if isFKViolation(err) {
				// A user joined the tier after the check.
				return fmt.Errorf("storage: delete tier %s: users are on it: %w (%w)", id, storage.ErrConflict, err)
			}
			return err
		}
		return nil
	})
}

// tierExists returns ErrNotFound unless the tier exists.
func (s *SQLStore) tierExists(ctx context.Context, id string) error {
	var one int
	if err := s.queryRow(ctx, `SELECT 1 FROM tiers WHERE id = ?`, id).Scan(&one); err != nil {
		return fmt.Errorf("tier %s: %w", id, s.mapErr(err))
	}
	return nil
}

// RateLimits returns a tier's limits ordered by Match; ErrNotFound when
// the tier does not exist.
func (s *SQLStore) RateLimits(ctx context.Context, tierID string) ([]storage.RateLimit, error) {
	rows, err := s.query(ctx, `SELECT match, limit_count, period_ns FROM tier_rate_limits WHERE tier_id = ?
		ORDER BY match`, tierID)
	if err != nil {
		return nil, fmt.Errorf("storage: rate limits of %s: %w", tierID, s.mapErr(err))
	}
	defer rows.Close()
	var out []storage.RateLimit
	for rows.Next() {
		var l storage.RateLimit
		var period int64
		if err := rows.Scan(&l.Match, &l.Limit, &period); err != nil {
			return nil, fmt.Errorf("storage: rate limits of %s: %w", tierID, s.mapErr(err))
		}
		l.Period = time.Duration(period)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: rate limits of %s: %w", tierID, s.mapErr(err))
	}
	if len(out) == 0 {
		if err := s.tierExists(ctx, tierID); err != nil {
			return nil, fmt.Errorf("storage: rate limits: %w", err)
		}
	}
	return out, nil
}

// SetRateLimits replaces a tier's limits in one transaction. ErrNotFound
// when the tier does not exist, ErrDuplicate when two limits have the same
// Match.
func (s *SQLStore) SetRateLimits(ctx context.Context, tierID string, limits []storage.RateLimit) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		if err := s.tierExists(ctx, tierID); err != nil {
			return fmt.Errorf("storage: set rate limits: %w", err)
		}
		if _, err := s.exec(ctx, `DELETE FROM tier_rate_limits WHERE tier_id = ?`, tierID); err != nil {
			return fmt.Errorf("storage: set rate limits of %s: %w", tierID, s.mapErr(err))
		}
		for _, l := range limits {
			if _, err := s.exec(ctx, `INSERT INTO tier_rate_limits (tier_id, match, limit_count, period_ns) VALUES (?, ?, ?, ?)`,
				tierID, l.Match, l.Limit, int64(l.Period)); err != nil {
				return fmt.Errorf("storage: set rate limits of %s: %s: %w", tierID, l.Match, s.mapErr(err))
			}
		}
		return nil
	})
}

// SetUserTier puts a user on a tier ("" = none) and advances the user's
// UpdatedAt. ErrNotFound for an unknown user or tier.
func (s *SQLStore) SetUserTier(ctx context.Context, userID, tierID string) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		if tierID != "" {
			if err := s.tierExists(ctx, tierID); err != nil {
				return fmt.Errorf("storage: set user tier: %w", err)
			}
		}
		err := s.updateOne(ctx, "set user tier", `UPDATE users SET tier_id = ?, updated_at = ? WHERE id = ?`,
			nullStr(tierID), s.ts(time.Now()), userID)
		if err != nil && isFKViolation(err) {
			// The tier was deleted after the check.
			return fmt.Errorf("storage: set user tier: tier %s: %w (%w)", tierID, storage.ErrNotFound, err)
		}
		return err
	})
}

// ---- audit ----

const auditCols = `id, time, actor_type, actor_id, action, target_id, ip, user_agent, reason, changes`

// Audit page sizes.
const (
	defaultAuditLimit = 50
	maxAuditLimit     = 500
)

// mapVal is how a map[string]any is stored: JSON text, "{}" for empty.
func mapVal(m map[string]any) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	return string(b), err
}

// mapDest scans a JSON text column into a map[string]any (nil for "{}").
type mapDest struct{ m *map[string]any }

func (d mapDest) Scan(v any) error { return scanJSONText(v, d.m, "map") }

// AppendAudit inserts e, filling e.ID and, when zero, e.Time.
func (s *SQLStore) AppendAudit(ctx context.Context, e *storage.AuditEvent) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = normTime(e.Time)
	changes, err := mapVal(e.Changes)
	if err != nil {
		return fmt.Errorf("storage: append audit %s: encode changes: %w", e.Action, err)
	}
	err = s.queryRow(ctx, `INSERT INTO audit_events (time, actor_type, actor_id, action, target_id, ip, user_agent, reason, changes)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		s.ts(e.Time), e.ActorType, e.ActorID, e.Action, e.TargetID, e.IP, e.UserAgent, e.Reason, changes).Scan(&e.ID)
	if err != nil {
		return fmt.Errorf("storage: append audit %s: %w", e.Action, s.mapErr(err))
	}
	return nil
}

// likeEscape escapes LIKE's wildcards and the escape character ('\').
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// ListAudit returns the events matching q, newest first. Since is
// inclusive, Until exclusive; After is the id of the previous page's last
// event. Limit defaults to 50 and is capped at 500.
func (s *SQLStore) ListAudit(ctx context.Context, q storage.AuditQuery) ([]storage.AuditEvent, error) {
	var where []string
	var args []any
	add := func(cond string, a ...any) {
		where = append(where, cond)
		args = append(args, a...)
	}
	if q.TargetID != "" {
		add(`target_id = ?`, q.TargetID)
	}
	if q.ActorID != "" {
		add(`actor_id = ?`, q.ActorID)
	}
	if len(q.Actions) > 0 {
		var or []string
		for _, a := range q.Actions {
			if strings.HasSuffix(a, ".") {
				or = append(or, `action LIKE ? ESCAPE '\'`)
				args = append(args, likeEscape(a)+"%")
			} else {
				or = append(or, `action = ?`)
				args = append(args, a)
			}
		}
		where = append(where, "("+strings.Join(or, " OR ")+")")
	}
	if q.IP != "" {
		add(`ip = ?`, q.IP)
	}
	if !q.Since.IsZero() {
		add(`time >= ?`, s.ts(q.Since))
	}
	if !q.Until.IsZero() {
		add(`time < ?`, s.ts(q.Until))
	}
	if q.After > 0 {
		add(`id < ?`, q.After)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = defaultAuditLimit
	}
	limit = min(limit, maxAuditLimit)
	query := `SELECT ` + auditCols + ` FROM audit_events`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)

	rows, err := s.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("storage: list audit: %w", s.mapErr(err))
	}
	defer rows.Close()
	var out []storage.AuditEvent
	for rows.Next() {
		var e storage.AuditEvent
		if err := rows.Scan(&e.ID, timeDest{&e.Time}, &e.ActorType, &e.ActorID, &e.Action, &e.TargetID, &e.IP,
			&e.UserAgent, &e.Reason, mapDest{&e.Changes}); err != nil {
			return nil, fmt.Errorf("storage: list audit: %w", s.mapErr(err))
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: list audit: %w", s.mapErr(err))
	}
	return out, nil
}

// ---- user search ----

// User search page sizes.
const (
	defaultUserLimit = 50
	maxUserLimit     = 200
)

// userCursor is what a search cursor encodes: the last row's sort key and
// id. K is RFC 3339 (nanoseconds) for the created_at sorts, the username
// for SortUsernameAsc.
type userCursor struct {
	K  string `json:"k"`
	ID string `json:"id"`
}

func encodeCursor(c userCursor) string {
	b, _ := json.Marshal(c) // two strings: cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (userCursor, error) {
	var c userCursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return c, fmt.Errorf("%w: %w", storage.ErrBadCursor, err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%w: %w", storage.ErrBadCursor, err)
	}
	if c.ID == "" {
		return c, fmt.Errorf("%w: no id", storage.ErrBadCursor)
	}
	return c, nil
}

// SearchUsers returns one page of users matching q, in q.Sort order
// (newest first by default), paged by keyset on (sort key, id).
// CreatedAfter is inclusive, CreatedBefore exclusive. Q matches a
// substring of the email, username or display name ignoring case, with
// '%' and '_' taken literally. Limit defaults to 50 and is capped at 200.
// A cursor that does not decode is ErrBadCursor.
func (s *SQLStore) SearchUsers(ctx context.Context, q storage.UserQuery) (*storage.UserPage, error) {
	var where []string
	var args []any
	add := func(cond string, a ...any) {
		where = append(where, cond)
		args = append(args, a...)
	}
	if q.Q != "" && q.UsernameOnly {
		add(`lower(username) LIKE lower(?) ESCAPE '\'`, "%"+likeEscape(q.Q)+"%")
	} else if q.Q != "" {
		p := "%" + likeEscape(q.Q) + "%"
		add(`(lower(email) LIKE lower(?) ESCAPE '\' OR lower(username) LIKE lower(?) ESCAPE '\'
			OR lower(display_name) LIKE lower(?) ESCAPE '\')`, p, p, p)
	}
	if q.Status != "" {
		add(`status = ?`, string(q.Status))
	}
	if q.TierID != "" {
		add(`tier_id = ?`, q.TierID)
	}
	if q.EmailVerified != nil {
		add(`email_verified = ?`, *q.EmailVerified)
	}
	if !q.CreatedAfter.IsZero() {
		add(`created_at >= ?`, s.ts(q.CreatedAfter))
	}
	if !q.CreatedBefore.IsZero() {
		add(`created_at < ?`, s.ts(q.CreatedBefore))
	}
	if !q.LastLoginAfter.IsZero() {
		add(`last_login_at >= ?`, s.ts(q.LastLoginAfter))
	}
	if !q.LastLoginBefore.IsZero() {
		add(`last_login_at < ?`, s.ts(q.LastLoginBefore))
	}
	// Group and role filters: the groups are resolved first (a handful of
	// ids), so that the search itself names them and the planner can use
	// the statistics of group_members: a large group walks users in sort
	// order and probes memberships, a small one fetches its members.
	if q.GroupID != "" {
		groups, err := s.groupSubtree(ctx, `SELECT id, 1 FROM groups WHERE id = ?`, q.GroupID)
		if err != nil {
			return nil, fmt.Errorf("storage: search users: %w", err)
		}
		if len(groups) == 0 {
			add(`1 = 0`)
		} else {
			add(`EXISTS (SELECT 1 FROM group_members m WHERE m.user_id = users.id AND m.group_id IN (`+placeholders(len(groups))+`))`,
				groups...)
		}
	}
	if q.RoleID != "" {
		groups, err := s.groupSubtree(ctx, `SELECT group_id, 1 FROM group_roles WHERE role_id = ?`, q.RoleID)
		if err != nil {
			return nil, fmt.Errorf("storage: search users: %w", err)
		}
		// Direct holders are resolved first too when they are few (a
		// rare role then fetches its holders by id instead of walking
		// the users in sort order to find them); many are probed.
		direct, err := s.fewDirectHolders(ctx, q.RoleID)
		if err != nil {
			return nil, fmt.Errorf("storage: search users: %w", err)
		}
		var conds []string
		var args []any
		switch {
		case direct == nil:
			conds = append(conds, `EXISTS (SELECT 1 FROM user_roles ur WHERE ur.user_id = users.id AND ur.role_id = ?)`)
			args = append(args, q.RoleID)
		case len(direct) > 0:
			conds = append(conds, `users.id IN (`+placeholders(len(direct))+`)`)
			args = append(args, direct...)
		}
		if len(groups) > 0 {
			conds = append(conds, `EXISTS (SELECT 1 FROM group_members m WHERE m.user_id = users.id AND m.group_id IN (`+
				placeholders(len(groups))+`))`)
			args = append(args, groups...)
		}
		if len(conds) == 0 {
			add(`1 = 0`)
		} else {
			add(`(`+strings.Join(conds, ` OR `)+`)`, args...)
		}
	}

	var order, keyset string
	byUsername, byLastLogin := false, false
	lastLogin := `coalesce(last_login_at, 0)` // never signed in sorts as the epoch
	if s.dialect == DialectPostgres {
		lastLogin = `coalesce(last_login_at, timestamptz '1970-01-01 00:00:00+00')`
	}
	switch q.Sort {
	case storage.SortLastLoginDesc:
		order, keyset, byLastLogin = lastLogin+` DESC, id DESC`, `(`+lastLogin+`, id) < (?, ?)`, true
	case storage.SortLastLoginAsc:
		order, keyset, byLastLogin = lastLogin+`, id`, `(`+lastLogin+`, id) > (?, ?)`, true
	case "", storage.SortCreatedDesc:
		order, keyset = `created_at DESC, id DESC`, `(created_at, id) < (?, ?)`
	case storage.SortCreatedAsc:
		order, keyset = `created_at, id`, `(created_at, id) > (?, ?)`
	case storage.SortUsernameAsc:
		order, keyset, byUsername = `username, id`, `(username, id) > (?, ?)`, true
	default:
		return nil, fmt.Errorf("storage: search users: unknown sort %q", q.Sort)
	}
	if q.After != "" {
		c, err := decodeCursor(q.After)
		if err != nil {
			return nil, fmt.Errorf("storage: search users: %w", err)
		}
		if byUsername {
			add(keyset, c.K, c.ID)
		} else {
			t, err := time.Parse(time.RFC3339Nano, c.K)
			if err != nil {
				return nil, fmt.Errorf("storage: search users: %w: %w", storage.ErrBadCursor, err)
			}
			add(keyset, s.ts(t), c.ID)
		}
	}
	limit := q.Limit
	if limit <= 0 {
		limit = defaultUserLimit
	}
	limit = min(limit, maxUserLimit)

	query := `SELECT ` + userCols + ` FROM users`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY ` + order + ` LIMIT ?`
	args = append(args, limit+1)

	rows, err := s.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("storage: search users: %w", s.mapErr(err))
	}
	defer rows.Close()
	page := &storage.UserPage{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("storage: search users: %w", s.mapErr(err))
		}
		page.Users = append(page.Users, *u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: search users: %w", s.mapErr(err))
	}
	if len(page.Users) > limit {
		page.Users = page.Users[:limit]
		last := page.Users[limit-1]
		c := userCursor{K: last.CreatedAt.Format(time.RFC3339Nano), ID: last.ID}
		switch {
		case byUsername:
			c.K = last.Username
		case byLastLogin:
			t := time.Unix(0, 0).UTC()
			if last.LastLoginAt != nil {
				t = *last.LastLoginAt
			}
			c.K = t.Format(time.RFC3339Nano)
		}
		page.Next = encodeCursor(c)
	}
	return page, nil
}

// groupSubtree returns the ids of the groups seed selects (rows of id, 1,
// with one parameter) and of every group below them, bounded by
// MaxGroupDepth.
func (s *SQLStore) groupSubtree(ctx context.Context, seed string, arg string) ([]any, error) {
	rows, err := s.query(ctx, fmt.Sprintf(`WITH RECURSIVE d(id, n) AS (%s
		UNION ALL
		SELECT g.id, d.n + 1 FROM groups g JOIN d ON g.parent_id = d.id WHERE d.n < %d)
		SELECT DISTINCT id FROM d`, seed, storage.MaxGroupDepth), arg)
	if err != nil {
		return nil, s.mapErr(err)
	}
	defer rows.Close()
	var out []any
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, s.mapErr(err)
		}
		out = append(out, id)
	}
	return out, s.mapErr(rows.Err())
}

// maxResolvedHolders bounds the direct holders of a role that a search
// names by id.
const maxResolvedHolders = 500

// fewDirectHolders returns the users holding roleID directly when there
// are at most maxResolvedHolders (an empty, non-nil slice for none), nil
// when there are more.
func (s *SQLStore) fewDirectHolders(ctx context.Context, roleID string) ([]any, error) {
	rows, err := s.query(ctx, `SELECT user_id FROM user_roles WHERE role_id = ? LIMIT ?`, roleID, maxResolvedHolders+1)
	if err != nil {
		return nil, s.mapErr(err)
	}
	defer rows.Close()
	out := []any{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, s.mapErr(err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, s.mapErr(err)
	}
	if len(out) > maxResolvedHolders {
		return nil, nil
	}
	return out, nil
}

// placeholders is "?, ?, …" for n values.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// ---- hard delete and archive ----

const archiveCols = `user_id, username, email, display_name, profile, reason, deleted_by, created_at, deleted_at`

// HardDeleteUser archives the user and deletes the row in one transaction.
// a.UserID names the user; Username, Email, DisplayName and CreatedAt are
// taken from the row when a leaves them empty, DeletedAt is now when zero;
// Profile, Reason and DeletedBy are stored as given. The user's browser
// sessions, consents, email tokens and pending authorizations go with the
// row (ON DELETE CASCADE); their authorize codes, tokens and PKCE, OIDC and
// PAR sessions are deleted by subject. ErrNotFound when there is no such
// user.
func (s *SQLStore) HardDeleteUser(ctx context.Context, a *storage.UserArchive) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		q := `SELECT ` + userCols + ` FROM users WHERE id = ?`
		if s.dialect == DialectPostgres {
			// Two concurrent deletes: the second waits, then finds nothing.
			q += ` FOR UPDATE`
		}
		u, err := scanUser(s.queryRow(ctx, q, a.UserID))
		if err != nil {
			return fmt.Errorf("storage: hard delete user %s: %w", a.UserID, s.mapErr(err))
		}
		if a.Username == "" {
			a.Username = u.Username
		}
		if a.Email == "" {
			a.Email = u.Email
		}
		if a.DisplayName == "" {
			a.DisplayName = u.DisplayName
		}
		if a.CreatedAt.IsZero() {
			a.CreatedAt = u.CreatedAt
		}
		if a.DeletedAt.IsZero() {
			a.DeletedAt = time.Now()
		}
		a.CreatedAt, a.DeletedAt = normTime(a.CreatedAt), normTime(a.DeletedAt)
		profile, err := mapVal(a.Profile)
		if err != nil {
			return fmt.Errorf("storage: hard delete user %s: encode profile: %w", a.UserID, err)
		}
		if _, err := s.exec(ctx, `INSERT INTO user_archive (`+archiveCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.UserID, a.Username, a.Email, a.DisplayName, profile, a.Reason, a.DeletedBy,
			s.ts(a.CreatedAt), s.ts(a.DeletedAt)); err != nil {
			return fmt.Errorf("storage: hard delete user %s: archive: %w", a.UserID, s.mapErr(err))
		}
		for _, t := range []string{tableCodes, tableAccess, tableRefresh, tablePKCE, tableOIDC, tablePAR} {
			if _, err := s.exec(ctx, `DELETE FROM `+t+` WHERE subject = ?`, a.UserID); err != nil {
				return fmt.Errorf("storage: hard delete user %s: %s: %w", a.UserID, t, s.mapErr(err))
			}
		}
		return s.updateOne(ctx, "hard delete user "+a.UserID, `DELETE FROM users WHERE id = ?`, a.UserID)
	})
}

// GetUserArchive returns what a hard delete kept of a user.
func (s *SQLStore) GetUserArchive(ctx context.Context, userID string) (*storage.UserArchive, error) {
	var a storage.UserArchive
	err := s.queryRow(ctx, `SELECT `+archiveCols+` FROM user_archive WHERE user_id = ?`, userID).
		Scan(&a.UserID, &a.Username, &a.Email, &a.DisplayName, mapDest{&a.Profile}, &a.Reason, &a.DeletedBy,
			timeDest{&a.CreatedAt}, timeDest{&a.DeletedAt})
	if err != nil {
		return nil, fmt.Errorf("storage: get user archive %s: %w", userID, s.mapErr(err))
	}
	return &a, nil
}

// ---- stats ----

// maxStatsDays bounds the sign-up series.
const maxStatsDays = 3660

// Stats counts users by status and by tier (users on no tier under ""),
// and sign-ups per UTC day for the last days days, today included: one
// entry per day, oldest first, zero days included. days ≤ 0 gives no
// series; it is capped at 3660.
func (s *SQLStore) Stats(ctx context.Context, days int) (*storage.Stats, error) {
	st := &storage.Stats{ByStatus: map[storage.UserStatus]int64{}, ByTier: map[string]int64{}}
	rows, err := s.query(ctx, `SELECT status, count(*) FROM users GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("storage: stats: %w", s.mapErr(err))
	}
	defer rows.Close()
	for rows.Next() {
		var status string
		var n int64
		if err := rows.Scan(&status, &n); err != nil {
			return nil, fmt.Errorf("storage: stats: %w", s.mapErr(err))
		}
		st.ByStatus[storage.UserStatus(status)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: stats: %w", s.mapErr(err))
	}
	rows.Close()

	rows, err = s.query(ctx, `SELECT tier_id, count(*) FROM users GROUP BY tier_id`)
	if err != nil {
		return nil, fmt.Errorf("storage: stats: %w", s.mapErr(err))
	}
	defer rows.Close()
	for rows.Next() {
		var tier string
		var n int64
		if err := rows.Scan(strDest{&tier}, &n); err != nil {
			return nil, fmt.Errorf("storage: stats: %w", s.mapErr(err))
		}
		st.ByTier[tier] += n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: stats: %w", s.mapErr(err))
	}
	rows.Close()

	// Active users: signed in within the last 1, 7 and 30 days.
	now := time.Now()
	var a1, a7, a30 int64
	if err := s.queryRow(ctx, `SELECT coalesce(sum(CASE WHEN last_login_at >= ? THEN 1 ELSE 0 END), 0),
			coalesce(sum(CASE WHEN last_login_at >= ? THEN 1 ELSE 0 END), 0), count(*)
		FROM users WHERE last_login_at >= ?`,
		s.ts(now.Add(-24*time.Hour)), s.ts(now.Add(-7*24*time.Hour)), s.ts(now.Add(-30*24*time.Hour))).Scan(&a1, &a7, &a30); err != nil {
		return nil, fmt.Errorf("storage: stats: active users: %w", s.mapErr(err))
	}
	st.ActiveUsers = map[int]int64{1: a1, 7: a7, 30: a30}

	if days <= 0 {
		return st, nil
	}
	days = min(days, maxStatsDays)
	y, m, d := time.Now().UTC().Date()
	first := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).AddDate(0, 0, -(days - 1))
	dayExpr := `date(created_at / 1000000000, 'unixepoch')`
	if s.dialect == DialectPostgres {
		dayExpr = `to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')`
	}
	rows, err = s.query(ctx, `SELECT `+dayExpr+` AS day, count(*) FROM users WHERE created_at >= ? GROUP BY day`,
		s.ts(first))
	if err != nil {
		return nil, fmt.Errorf("storage: stats: %w", s.mapErr(err))
	}
	defer rows.Close()
	perDay := map[string]int64{}
	for rows.Next() {
		var day string
		var n int64
		if err := rows.Scan(&day, &n); err != nil {
			return nil, fmt.Errorf("storage: stats: %w", s.mapErr(err))
		}
		perDay[day] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: stats: %w", s.mapErr(err))
	}
	st.SignupsPerDay = make([]storage.DayCount, 0, days)
	for i := range days {
		day := first.AddDate(0, 0, i).Format(time.DateOnly)
		st.SignupsPerDay = append(st.SignupsPerDay, storage.DayCount{Day: day, Count: perDay[day]})
	}
	return st, nil
}
