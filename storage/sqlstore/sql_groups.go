package sqlstore

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/latchkey/latchkey/storage"
)

// ---- groups ----

const groupCols = `id, name, description, parent_id, created_at, updated_at`

// Page sizes of the group, role and member lists.
const (
	defaultPageLimit = 50
	maxPageLimit     = 200
)

func pageLimit(n int) int {
	if n <= 0 {
		return defaultPageLimit
	}
	return min(n, maxPageLimit)
}

func scanGroup(r rowScanner) (*storage.Group, error) {
	var g storage.Group
	if err := r.Scan(&g.ID, &g.Name, &g.Description, strDest{&g.ParentID}, timeDest{&g.CreatedAt}, timeDest{&g.UpdatedAt}); err != nil {
		return nil, err
	}
	return &g, nil
}

// lockGroupTree serializes changes to the hierarchy: a move reads the
// ancestors of its new parent, and two moves that each looked fine alone
// (A under B, B under A) must not commit together. SQLite transactions
// already hold the write lock from their first statement.
func (s *SQLStore) lockGroupTree(ctx context.Context) error {
	if s.dialect != DialectPostgres {
		return nil
	}
	_, err := s.exec(ctx, `SELECT pg_advisory_xact_lock(7422301)`)
	return s.mapErr(err)
}

// groupAncestors returns the ids from id up to its root, id first.
func (s *SQLStore) groupAncestors(ctx context.Context, id string) ([]string, error) {
	rows, err := s.query(ctx, `WITH RECURSIVE up(id, parent_id, n) AS (
			SELECT id, parent_id, 1 FROM groups WHERE id = ?
			UNION ALL
			SELECT g.id, g.parent_id, up.n + 1 FROM groups g JOIN up ON g.id = up.parent_id WHERE up.n <= ?)
		SELECT id FROM up ORDER BY n`, id, storage.MaxGroupDepth)
	if err != nil {
		return nil, s.mapErr(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return nil, s.mapErr(err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, s.mapErr(err)
	}
	if len(out) == 0 {
		return nil, storage.ErrNotFound
	}
	return out, nil
}

// groupHeight is the number of levels from id down to its deepest
// descendant, id included (a leaf has height 1).
func (s *SQLStore) groupHeight(ctx context.Context, id string) (int, error) {
	var h int
	err := s.queryRow(ctx, `WITH RECURSIVE down(id, n) AS (
			SELECT id, 1 FROM groups WHERE id = ?
			UNION ALL
			SELECT g.id, down.n + 1 FROM groups g JOIN down ON g.parent_id = down.id WHERE down.n <= ?)
		SELECT coalesce(max(n), 0) FROM down`, id, storage.MaxGroupDepth).Scan(&h)
	return h, s.mapErr(err)
}

// CreateGroup inserts a group under its parent, if the parent is not at
// the maximum depth already.
func (s *SQLStore) CreateGroup(ctx context.Context, g *storage.Group) error {
	now := time.Now()
	if g.CreatedAt.IsZero() {
		g.CreatedAt = now
	}
	if g.UpdatedAt.IsZero() {
		g.UpdatedAt = g.CreatedAt
	}
	g.CreatedAt, g.UpdatedAt = normTime(g.CreatedAt), normTime(g.UpdatedAt)
	return s.InTx(ctx, func(ctx context.Context) error {
		if err := s.lockGroupTree(ctx); err != nil {
			return fmt.Errorf("storage: create group %s: %w", g.ID, err)
		}
		if g.ParentID != "" {
			up, err := s.groupAncestors(ctx, g.ParentID)
			if err != nil {
				return fmt.Errorf("storage: create group %s: parent %s: %w", g.ID, g.ParentID, err)
			}
			if len(up) >= storage.MaxGroupDepth {
				return fmt.Errorf("storage: create group %s: %w", g.ID, storage.ErrTooDeep)
			}
		}
		_, err := s.exec(ctx, `INSERT INTO groups (`+groupCols+`) VALUES (?, ?, ?, ?, ?, ?)`,
			g.ID, g.Name, g.Description, nullStr(g.ParentID), s.ts(g.CreatedAt), s.ts(g.UpdatedAt))
		if err != nil {
			return fmt.Errorf("storage: create group %s: %w", g.ID, s.mapErr(err))
		}
		return nil
	})
}

// GetGroup finds a group by id.
func (s *SQLStore) GetGroup(ctx context.Context, id string) (*storage.Group, error) {
	g, err := scanGroup(s.queryRow(ctx, `SELECT `+groupCols+` FROM groups WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("storage: get group %s: %w", id, s.mapErr(err))
	}
	return g, nil
}

// ListGroups returns a page of groups by name (case-insensitive), then id.
func (s *SQLStore) ListGroups(ctx context.Context, q storage.PageQuery) ([]storage.Group, string, error) {
	limit := pageLimit(q.Limit)
	query, args := `SELECT `+groupCols+` FROM groups`, []any{}
	if q.After != "" {
		c, err := decodeCursor(q.After)
		if err != nil {
			return nil, "", fmt.Errorf("storage: list groups: %w", err)
		}
		query += ` WHERE (lower(name), id) > (?, ?)`
		args = append(args, c.K, c.ID)
	}
	query += ` ORDER BY lower(name), id LIMIT ?`
	args = append(args, limit+1)
	rows, err := s.query(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("storage: list groups: %w", s.mapErr(err))
	}
	defer rows.Close()
	var out []storage.Group
	for rows.Next() {
		g, err := scanGroup(rows)
		if err != nil {
			return nil, "", fmt.Errorf("storage: list groups: %w", s.mapErr(err))
		}
		out = append(out, *g)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("storage: list groups: %w", s.mapErr(err))
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = encodeCursor(userCursor{K: strings.ToLower(last.Name), ID: last.ID})
	}
	return out, next, nil
}

// UpdateGroup writes a group, refusing a parent that would make a cycle
// or nest too deep.
func (s *SQLStore) UpdateGroup(ctx context.Context, g *storage.Group) error {
	g.UpdatedAt = normTime(g.UpdatedAt)
	if g.UpdatedAt.IsZero() {
		g.UpdatedAt = normTime(time.Now())
	}
	return s.InTx(ctx, func(ctx context.Context) error {
		if err := s.lockGroupTree(ctx); err != nil {
			return fmt.Errorf("storage: update group %s: %w", g.ID, err)
		}
		if g.ParentID != "" {
			up, err := s.groupAncestors(ctx, g.ParentID)
			if err != nil {
				return fmt.Errorf("storage: update group %s: parent %s: %w", g.ID, g.ParentID, err)
			}
			for _, a := range up {
				if a == g.ID {
					return fmt.Errorf("storage: update group %s: %w", g.ID, storage.ErrCycle)
				}
			}
			h, err := s.groupHeight(ctx, g.ID)
			if err != nil {
				return fmt.Errorf("storage: update group %s: %w", g.ID, err)
			}
			if len(up)+h > storage.MaxGroupDepth {
				return fmt.Errorf("storage: update group %s: %w", g.ID, storage.ErrTooDeep)
			}
		}
		return s.updateOne(ctx, "update group "+g.ID, `UPDATE groups SET name = ?, description = ?, parent_id = ?, updated_at = ?
			WHERE id = ?`, g.Name, g.Description, nullStr(g.ParentID), s.ts(g.UpdatedAt), g.ID)
	})
}

// DeleteGroup removes a childless group; its memberships and grants go
// with it (ON DELETE CASCADE).
func (s *SQLStore) DeleteGroup(ctx context.Context, id string) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		if err := s.lockGroupTree(ctx); err != nil {
			return fmt.Errorf("storage: delete group %s: %w", id, err)
		}
		var children int
		if err := s.queryRow(ctx, `SELECT count(*) FROM groups WHERE parent_id = ?`, id).Scan(&children); err != nil {
			return fmt.Errorf("storage: delete group %s: %w", id, s.mapErr(err))
		}
		if children > 0 {
			return fmt.Errorf("storage: delete group %s: it has %d child groups: %w", id, children, storage.ErrConflict)
		}
		return s.updateOne(ctx, "delete group "+id, `DELETE FROM groups WHERE id = ?`, id)
	})
}

// ---- memberships and grants ----

// link inserts a row of a link table (idempotently); a missing end is
// ErrNotFound.
func (s *SQLStore) link(ctx context.Context, what, table, colA, colB, a, b string) error {
	_, err := s.exec(ctx, `INSERT INTO `+table+` (`+colA+`, `+colB+`, created_at) VALUES (?, ?, ?)
		ON CONFLICT (`+colA+`, `+colB+`) DO NOTHING`, a, b, s.ts(time.Now()))
	if err != nil {
		if isFKViolation(err) {
			return fmt.Errorf("storage: %s %s %s: %w (%w)", what, a, b, storage.ErrNotFound, err)
		}
		return fmt.Errorf("storage: %s %s %s: %w", what, a, b, s.mapErr(err))
	}
	return nil
}

func (s *SQLStore) unlink(ctx context.Context, what, table, colA, colB, a, b string) error {
	return s.updateOne(ctx, what+" "+a+" "+b, `DELETE FROM `+table+` WHERE `+colA+` = ? AND `+colB+` = ?`, a, b)
}

// AddGroupMember makes userID a direct member of groupID.
func (s *SQLStore) AddGroupMember(ctx context.Context, groupID, userID string) error {
	return s.link(ctx, "add group member", "group_members", "group_id", "user_id", groupID, userID)
}

// RemoveGroupMember ends a direct membership.
func (s *SQLStore) RemoveGroupMember(ctx context.Context, groupID, userID string) error {
	return s.unlink(ctx, "remove group member", "group_members", "group_id", "user_id", groupID, userID)
}

// GrantGroupRole gives a group a role.
func (s *SQLStore) GrantGroupRole(ctx context.Context, groupID, roleID string) error {
	return s.link(ctx, "grant group role", "group_roles", "group_id", "role_id", groupID, roleID)
}

// RevokeGroupRole takes a role from a group.
func (s *SQLStore) RevokeGroupRole(ctx context.Context, groupID, roleID string) error {
	return s.unlink(ctx, "revoke group role", "group_roles", "group_id", "role_id", groupID, roleID)
}

// GrantUserRole gives a user a role directly.
func (s *SQLStore) GrantUserRole(ctx context.Context, userID, roleID string) error {
	return s.link(ctx, "grant user role", "user_roles", "user_id", "role_id", userID, roleID)
}

// RevokeUserRole takes a direct role from a user.
func (s *SQLStore) RevokeUserRole(ctx context.Context, userID, roleID string) error {
	return s.unlink(ctx, "revoke user role", "user_roles", "user_id", "role_id", userID, roleID)
}

// ListGroupMembers returns a page of a group's direct members by id.
func (s *SQLStore) ListGroupMembers(ctx context.Context, groupID string, q storage.PageQuery) ([]storage.User, string, error) {
	if _, err := s.GetGroup(ctx, groupID); err != nil {
		return nil, "", err
	}
	limit := pageLimit(q.Limit)
	query := `SELECT ` + userCols + ` FROM users WHERE id IN (SELECT user_id FROM group_members WHERE group_id = ?)`
	args := []any{groupID}
	if q.After != "" {
		c, err := decodeCursor(q.After)
		if err != nil {
			return nil, "", fmt.Errorf("storage: list group members: %w", err)
		}
		query += ` AND id > ?`
		args = append(args, c.ID)
	}
	query += ` ORDER BY id LIMIT ?`
	args = append(args, limit+1)
	rows, err := s.query(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("storage: list group members: %w", s.mapErr(err))
	}
	defer rows.Close()
	var out []storage.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, "", fmt.Errorf("storage: list group members: %w", s.mapErr(err))
		}
		out = append(out, *u)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("storage: list group members: %w", s.mapErr(err))
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = encodeCursor(userCursor{ID: out[limit-1].ID})
	}
	return out, next, nil
}

// ---- roles ----

const roleCols = `id, name, description, client_id, created_at, updated_at`

func scanRole(r rowScanner, extra ...any) (*storage.Role, error) {
	var ro storage.Role
	dest := append([]any{&ro.ID, &ro.Name, &ro.Description, strDest{&ro.ClientID}, timeDest{&ro.CreatedAt}, timeDest{&ro.UpdatedAt}}, extra...)
	if err := r.Scan(dest...); err != nil {
		return nil, err
	}
	return &ro, nil
}

// CreateRole inserts a role; a name taken among its client's roles (or
// the global ones) is ErrDuplicate, an unknown client ErrNotFound.
func (s *SQLStore) CreateRole(ctx context.Context, r *storage.Role) error {
	now := time.Now()
	if r.CreatedAt.IsZero() {
		r.CreatedAt = now
	}
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = r.CreatedAt
	}
	r.CreatedAt, r.UpdatedAt = normTime(r.CreatedAt), normTime(r.UpdatedAt)
	_, err := s.exec(ctx, `INSERT INTO roles (`+roleCols+`) VALUES (?, ?, ?, ?, ?, ?)`,
		r.ID, r.Name, r.Description, nullStr(r.ClientID), s.ts(r.CreatedAt), s.ts(r.UpdatedAt))
	if err != nil {
		if isFKViolation(err) {
			return fmt.Errorf("storage: create role %s: client %s: %w (%w)", r.ID, r.ClientID, storage.ErrNotFound, err)
		}
		return fmt.Errorf("storage: create role %s: %w", r.ID, s.mapErr(err))
	}
	return nil
}

// GetRole finds a role by id.
func (s *SQLStore) GetRole(ctx context.Context, id string) (*storage.Role, error) {
	r, err := scanRole(s.queryRow(ctx, `SELECT `+roleCols+` FROM roles WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("storage: get role %s: %w", id, s.mapErr(err))
	}
	return r, nil
}

// ListRoles returns a page of roles by name, then id.
func (s *SQLStore) ListRoles(ctx context.Context, q storage.RoleQuery) ([]storage.Role, string, error) {
	limit := pageLimit(q.Limit)
	var where []string
	var args []any
	switch {
	case q.GlobalOnly:
		where = append(where, `client_id IS NULL`)
	case q.ClientID != "":
		where, args = append(where, `client_id = ?`), append(args, q.ClientID)
	}
	if q.After != "" {
		c, err := decodeCursor(q.After)
		if err != nil {
			return nil, "", fmt.Errorf("storage: list roles: %w", err)
		}
		where, args = append(where, `(name, id) > (?, ?)`), append(args, c.K, c.ID)
	}
	query := `SELECT ` + roleCols + ` FROM roles`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY name, id LIMIT ?`
	args = append(args, limit+1)
	rows, err := s.query(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("storage: list roles: %w", s.mapErr(err))
	}
	defer rows.Close()
	var out []storage.Role
	for rows.Next() {
		r, err := scanRole(rows)
		if err != nil {
			return nil, "", fmt.Errorf("storage: list roles: %w", s.mapErr(err))
		}
		out = append(out, *r)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("storage: list roles: %w", s.mapErr(err))
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = encodeCursor(userCursor{K: last.Name, ID: last.ID})
	}
	return out, next, nil
}

// UpdateRole writes a role's name and description.
func (s *SQLStore) UpdateRole(ctx context.Context, r *storage.Role) error {
	r.UpdatedAt = normTime(r.UpdatedAt)
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = normTime(time.Now())
	}
	return s.updateOne(ctx, "update role "+r.ID, `UPDATE roles SET name = ?, description = ?, updated_at = ? WHERE id = ?`,
		r.Name, r.Description, s.ts(r.UpdatedAt), r.ID)
}

// DeleteRole removes a role and its grants (ON DELETE CASCADE).
func (s *SQLStore) DeleteRole(ctx context.Context, id string) error {
	return s.updateOne(ctx, "delete role "+id, `DELETE FROM roles WHERE id = ?`, id)
}

// GroupRoles returns the roles granted to a group itself, by name.
func (s *SQLStore) GroupRoles(ctx context.Context, groupID string) ([]storage.Role, error) {
	rows, err := s.query(ctx, `SELECT `+roleCols+` FROM roles WHERE id IN (SELECT role_id FROM group_roles WHERE group_id = ?)
		ORDER BY name, id`, groupID)
	if err != nil {
		return nil, fmt.Errorf("storage: group roles %s: %w", groupID, s.mapErr(err))
	}
	defer rows.Close()
	var out []storage.Role
	for rows.Next() {
		r, err := scanRole(rows)
		if err != nil {
			return nil, fmt.Errorf("storage: group roles %s: %w", groupID, s.mapErr(err))
		}
		out = append(out, *r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: group roles %s: %w", groupID, s.mapErr(err))
	}
	return out, nil
}

// memberGroupsCTE is the user's groups: their direct ones (direct = 1)
// and every ancestor of those (direct = 0), bounded by MaxGroupDepth.
// Its one parameter is the user id.
var memberGroupsCTE = fmt.Sprintf(`WITH RECURSIVE mg(id, direct, n) AS (
		SELECT group_id, 1, 1 FROM group_members WHERE user_id = ?
		UNION ALL
		SELECT g.parent_id, 0, mg.n + 1 FROM groups g JOIN mg ON g.id = mg.id
		WHERE g.parent_id IS NOT NULL AND mg.n < %d)`, storage.MaxGroupDepth)

// UserMemberships returns a user's groups and effective roles: two
// statements, each walking the hierarchy once.
func (s *SQLStore) UserMemberships(ctx context.Context, userID string) (*storage.Memberships, error) {
	m := &storage.Memberships{Groups: []storage.GroupMembership{}, Roles: []storage.EffectiveRole{}}
	rows, err := s.query(ctx, memberGroupsCTE+`
		SELECT g.id, g.name, g.description, g.parent_id, g.created_at, g.updated_at, max(mg.direct)
		FROM mg JOIN groups g ON g.id = mg.id
		GROUP BY g.id, g.name, g.description, g.parent_id, g.created_at, g.updated_at
		ORDER BY lower(g.name), g.id`, userID)
	if err != nil {
		return nil, fmt.Errorf("storage: user memberships %s: %w", userID, s.mapErr(err))
	}
	defer rows.Close()
	for rows.Next() {
		var gm storage.GroupMembership
		var direct int
		if err := rows.Scan(&gm.ID, &gm.Name, &gm.Description, strDest{&gm.ParentID}, timeDest{&gm.CreatedAt},
			timeDest{&gm.UpdatedAt}, &direct); err != nil {
			return nil, fmt.Errorf("storage: user memberships %s: %w", userID, s.mapErr(err))
		}
		gm.Direct = direct == 1
		m.Groups = append(m.Groups, gm)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: user memberships %s: %w", userID, s.mapErr(err))
	}
	rows.Close()

	rows, err = s.query(ctx, memberGroupsCTE+`
		SELECT r.id, r.name, r.description, r.client_id, r.created_at, r.updated_at, '', ''
		FROM user_roles ur JOIN roles r ON r.id = ur.role_id WHERE ur.user_id = ?
		UNION
		SELECT r.id, r.name, r.description, r.client_id, r.created_at, r.updated_at, g.id, g.name
		FROM mg JOIN groups g ON g.id = mg.id JOIN group_roles gr ON gr.group_id = g.id JOIN roles r ON r.id = gr.role_id`,
		userID, userID)
	if err != nil {
		return nil, fmt.Errorf("storage: user roles %s: %w", userID, s.mapErr(err))
	}
	defer rows.Close()
	byID := map[string]int{}
	for rows.Next() {
		var src storage.RoleSource
		r, err := scanRole(rows, &src.GroupID, &src.GroupName)
		if err != nil {
			return nil, fmt.Errorf("storage: user roles %s: %w", userID, s.mapErr(err))
		}
		i, seen := byID[r.ID]
		if !seen {
			i = len(m.Roles)
			byID[r.ID] = i
			m.Roles = append(m.Roles, storage.EffectiveRole{Role: *r})
		}
		m.Roles[i].Sources = append(m.Roles[i].Sources, src)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: user roles %s: %w", userID, s.mapErr(err))
	}
	sort.Slice(m.Roles, func(i, j int) bool {
		a, b := m.Roles[i], m.Roles[j]
		if a.ClientID != b.ClientID {
			return a.ClientID < b.ClientID
		}
		return a.Name < b.Name
	})
	for i := range m.Roles {
		srcs := m.Roles[i].Sources
		sort.Slice(srcs, func(a, b int) bool { return srcs[a].GroupName < srcs[b].GroupName })
	}
	return m, nil
}

var _ storage.Groups = (*SQLStore)(nil)
