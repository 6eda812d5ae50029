package accounts

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/storage"
)

// This file holds the rules of groups and roles (issue 11 §1): names,
// built-in roles, and the audited changes. The store keeps the hierarchy
// acyclic and bounded; the rules here decide what a name may be.

// Built-in roles. Holding RoleAdmin, or RoleAdminPrefix+scope for an
// admin API scope without its "admin:" prefix (latchkey:admin:users.read),
// lets a person obtain that admin scope. They are seeded by migration 10
// and can be granted, never renamed or deleted.
const (
	RoleAdmin       = "latchkey:admin"
	RoleAdminPrefix = "latchkey:admin:"
	// reservedRolePrefix is refused in the names of new roles.
	reservedRolePrefix = "latchkey:"
)

// ErrBuiltIn: built-in roles cannot be changed or deleted.
var ErrBuiltIn = errors.New("accounts: built-in roles cannot be changed")

// Audited group and role actions.
const (
	AuditGroupCreate     = "group.create"
	AuditGroupUpdate     = "group.update"
	AuditGroupDelete     = "group.delete"
	AuditGroupMemberAdd  = "group.member.add"
	AuditGroupMemberDrop = "group.member.remove"
	AuditGroupRoleGrant  = "group.role.grant"
	AuditGroupRoleRevoke = "group.role.revoke"
	AuditRoleCreate      = "role.create"
	AuditRoleUpdate      = "role.update"
	AuditRoleDelete      = "role.delete"
	AuditUserRoleGrant   = "user.role.grant"
	AuditUserRoleRevoke  = "user.role.revoke"
)

// Group names are what relying parties match on (oauth2-proxy's
// --allowed-group, Kubernetes RBAC subjects): printable, no spaces at the
// ends, no commas (several tools split on them).
var groupNamePattern = regexp.MustCompile(`^[^\s,\x00-\x1f][^,\x00-\x1f]{0,98}[^\s,\x00-\x1f]$|^[^\s,\x00-\x1f]$`)

// Role names are identifiers: letters, digits and . _ : - (as in
// Keycloak and Argo CD policies).
var roleNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$`)

func checkGroupName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if !groupNamePattern.MatchString(name) {
		return "", invalid("name", "must be 1–100 characters, without commas or control characters")
	}
	return name, nil
}

func checkRoleName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if !roleNamePattern.MatchString(name) {
		return "", invalid("name", "must be 1–100 letters, digits, '.', '_', ':' or '-', starting with a letter or digit")
	}
	if strings.HasPrefix(name, reservedRolePrefix) {
		return "", invalid("name", "names starting with %q are reserved for built-in roles", reservedRolePrefix)
	}
	return name, nil
}

func checkDescription(d string) (string, error) {
	d = strings.TrimSpace(d)
	if len([]rune(d)) > 500 {
		return "", invalid("description", "must be at most 500 characters")
	}
	return d, nil
}

// IsBuiltInRole reports whether r is one of the seeded latchkey: roles.
func IsBuiltInRole(r *storage.Role) bool {
	return r.ClientID == "" && strings.HasPrefix(r.Name, reservedRolePrefix)
}

// hierarchyErr names the field of a refused parent.
func hierarchyErr(err error) error {
	switch {
	case errors.Is(err, storage.ErrCycle):
		return invalid("parent_id", "would make the group its own ancestor")
	case errors.Is(err, storage.ErrTooDeep):
		return invalid("parent_id", "groups nest at most %d deep", storage.MaxGroupDepth)
	case errors.Is(err, storage.ErrNotFound):
		return invalid("parent_id", "names no group")
	}
	return err
}

// GroupSpec creates or (pointers set) changes a group. ParentID "" makes
// it a root group.
type GroupSpec struct {
	Name, Description, ParentID *string
}

// CreateGroup adds a group.
func (s *Service) CreateGroup(ctx context.Context, spec GroupSpec) (*storage.Group, error) {
	if spec.Name == nil {
		return nil, invalid("name", "is required")
	}
	now := s.now().UTC()
	g := &storage.Group{ID: "g_" + secret.Token(9), CreatedAt: now, UpdatedAt: now}
	if err := applyGroupSpec(g, spec, map[string]any{}); err != nil {
		return nil, err
	}
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreateGroup(ctx, g); err != nil {
			if errors.Is(err, storage.ErrDuplicate) {
				return taken("name")
			}
			return hierarchyErr(err)
		}
		return s.audit(ctx, AuditGroupCreate, g.ID, "", map[string]any{"name": g.Name, "parent_id": g.ParentID})
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

func applyGroupSpec(g *storage.Group, spec GroupSpec, changes map[string]any) error {
	var err error
	if spec.Name != nil {
		if g.Name, err = checkGroupName(*spec.Name); err != nil {
			return err
		}
		changes["name"] = g.Name
	}
	if spec.Description != nil {
		if g.Description, err = checkDescription(*spec.Description); err != nil {
			return err
		}
		changes["description"] = g.Description
	}
	if spec.ParentID != nil {
		g.ParentID = strings.TrimSpace(*spec.ParentID)
		if g.ParentID == g.ID {
			return invalid("parent_id", "would make the group its own ancestor")
		}
		changes["parent_id"] = g.ParentID
	}
	return nil
}

// UpdateGroup changes a group.
func (s *Service) UpdateGroup(ctx context.Context, id string, spec GroupSpec) (*storage.Group, error) {
	g, err := s.store.GetGroup(ctx, id)
	if err != nil {
		return nil, err
	}
	changes := map[string]any{}
	if err := applyGroupSpec(g, spec, changes); err != nil {
		return nil, err
	}
	g.UpdatedAt = s.now().UTC()
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.UpdateGroup(ctx, g); err != nil {
			if errors.Is(err, storage.ErrDuplicate) {
				return taken("name")
			}
			if errors.Is(err, storage.ErrNotFound) && g.ParentID != "" {
				if _, gerr := s.store.GetGroup(ctx, g.ID); gerr != nil {
					return gerr // the group itself went
				}
			}
			return hierarchyErr(err)
		}
		return s.audit(ctx, AuditGroupUpdate, g.ID, "", changes)
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// DeleteGroup removes a group without child groups (storage.ErrConflict
// otherwise); its members lose the membership and its roles.
func (s *Service) DeleteGroup(ctx context.Context, id string) error {
	return s.store.InTx(ctx, func(ctx context.Context) error {
		g, err := s.store.GetGroup(ctx, id)
		if err != nil {
			return err
		}
		if err := s.store.DeleteGroup(ctx, id); err != nil {
			return err
		}
		return s.audit(ctx, AuditGroupDelete, id, "", map[string]any{"name": g.Name})
	})
}

// GetGroup returns a group.
func (s *Service) GetGroup(ctx context.Context, id string) (*storage.Group, error) {
	return s.store.GetGroup(ctx, id)
}

// ListGroups returns a page of groups by name.
func (s *Service) ListGroups(ctx context.Context, q storage.PageQuery) ([]storage.Group, string, error) {
	return s.store.ListGroups(ctx, q)
}

// GroupRoles returns the roles granted to the group itself.
func (s *Service) GroupRoles(ctx context.Context, id string) ([]storage.Role, error) {
	if _, err := s.store.GetGroup(ctx, id); err != nil {
		return nil, err
	}
	return s.store.GroupRoles(ctx, id)
}

// ListGroupMembers returns a page of a group's direct members.
func (s *Service) ListGroupMembers(ctx context.Context, id string, q storage.PageQuery) ([]storage.User, string, error) {
	return s.store.ListGroupMembers(ctx, id, q)
}

// changeLink runs one membership or grant change with its audit record. It
// looks both ends up first so that a missing one is named (the store's
// foreign-key error cannot say which).
func (s *Service) changeLink(ctx context.Context, action, target string, changes map[string]any, check []func(context.Context) error,
	change func(context.Context) error) error {
	return s.store.InTx(ctx, func(ctx context.Context) error {
		for _, c := range check {
			if err := c(ctx); err != nil {
				return err
			}
		}
		if err := change(ctx); err != nil {
			return err
		}
		return s.audit(ctx, action, target, "", changes)
	})
}

func (s *Service) groupExists(id string) func(context.Context) error {
	return func(ctx context.Context) error { _, err := s.store.GetGroup(ctx, id); return err }
}

func (s *Service) userExists(id string) func(context.Context) error {
	return func(ctx context.Context) error { _, err := s.store.GetUser(ctx, id); return err }
}

func (s *Service) roleExists(id string) func(context.Context) error {
	return func(ctx context.Context) error { _, err := s.store.GetRole(ctx, id); return err }
}

// AddGroupMember makes a user a direct member of a group (idempotent).
func (s *Service) AddGroupMember(ctx context.Context, groupID, userID string) error {
	return s.changeLink(ctx, AuditGroupMemberAdd, userID, map[string]any{"group_id": groupID},
		[]func(context.Context) error{s.groupExists(groupID), s.userExists(userID)},
		func(ctx context.Context) error { return s.store.AddGroupMember(ctx, groupID, userID) })
}

// RemoveGroupMember ends a direct membership; storage.ErrNotFound when
// there is none.
func (s *Service) RemoveGroupMember(ctx context.Context, groupID, userID string) error {
	return s.changeLink(ctx, AuditGroupMemberDrop, userID, map[string]any{"group_id": groupID}, nil,
		func(ctx context.Context) error { return s.store.RemoveGroupMember(ctx, groupID, userID) })
}

// GrantGroupRole gives a group a role (idempotent).
func (s *Service) GrantGroupRole(ctx context.Context, groupID, roleID string) error {
	return s.changeLink(ctx, AuditGroupRoleGrant, groupID, map[string]any{"role_id": roleID},
		[]func(context.Context) error{s.groupExists(groupID), s.roleExists(roleID)},
		func(ctx context.Context) error { return s.store.GrantGroupRole(ctx, groupID, roleID) })
}

// RevokeGroupRole takes a role from a group.
func (s *Service) RevokeGroupRole(ctx context.Context, groupID, roleID string) error {
	return s.changeLink(ctx, AuditGroupRoleRevoke, groupID, map[string]any{"role_id": roleID}, nil,
		func(ctx context.Context) error { return s.store.RevokeGroupRole(ctx, groupID, roleID) })
}

// GrantUserRole gives a user a role directly (idempotent).
func (s *Service) GrantUserRole(ctx context.Context, userID, roleID string) error {
	return s.changeLink(ctx, AuditUserRoleGrant, userID, map[string]any{"role_id": roleID},
		[]func(context.Context) error{s.userExists(userID), s.roleExists(roleID)},
		func(ctx context.Context) error { return s.store.GrantUserRole(ctx, userID, roleID) })
}

// RevokeUserRole takes a direct role from a user.
func (s *Service) RevokeUserRole(ctx context.Context, userID, roleID string) error {
	return s.changeLink(ctx, AuditUserRoleRevoke, userID, map[string]any{"role_id": roleID}, nil,
		func(ctx context.Context) error { return s.store.RevokeUserRole(ctx, userID, roleID) })
}

// RoleSpec creates or (pointers set) changes a role. ClientID is only
// read at creation: a role never moves between clients.
type RoleSpec struct {
	Name, Description, ClientID *string
}

// CreateRole adds a global or client role.
func (s *Service) CreateRole(ctx context.Context, spec RoleSpec) (*storage.Role, error) {
	if spec.Name == nil {
		return nil, invalid("name", "is required")
	}
	name, err := checkRoleName(*spec.Name)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	r := &storage.Role{ID: "r_" + secret.Token(9), Name: name, CreatedAt: now, UpdatedAt: now}
	if spec.Description != nil {
		if r.Description, err = checkDescription(*spec.Description); err != nil {
			return nil, err
		}
	}
	if spec.ClientID != nil {
		r.ClientID = strings.TrimSpace(*spec.ClientID)
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if r.ClientID != "" {
			if _, err := s.store.GetClientByID(ctx, r.ClientID); errors.Is(err, storage.ErrNotFound) {
				return invalid("client_id", "names no client")
			} else if err != nil {
				return err
			}
		}
		if err := s.store.CreateRole(ctx, r); err != nil {
			if errors.Is(err, storage.ErrDuplicate) {
				return taken("name")
			}
			return err
		}
		return s.audit(ctx, AuditRoleCreate, r.ID, "", map[string]any{"name": r.Name, "client_id": r.ClientID})
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// UpdateRole renames or describes a role; built-in roles are refused.
func (s *Service) UpdateRole(ctx context.Context, id string, spec RoleSpec) (*storage.Role, error) {
	r, err := s.store.GetRole(ctx, id)
	if err != nil {
		return nil, err
	}
	if IsBuiltInRole(r) {
		return nil, fmt.Errorf("role %s: %w", r.Name, ErrBuiltIn)
	}
	if spec.ClientID != nil && strings.TrimSpace(*spec.ClientID) != r.ClientID {
		return nil, invalid("client_id", "cannot change: create a role for the other client instead")
	}
	changes := map[string]any{}
	if spec.Name != nil {
		if r.Name, err = checkRoleName(*spec.Name); err != nil {
			return nil, err
		}
		changes["name"] = r.Name
	}
	if spec.Description != nil {
		if r.Description, err = checkDescription(*spec.Description); err != nil {
			return nil, err
		}
		changes["description"] = r.Description
	}
	r.UpdatedAt = s.now().UTC()
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.UpdateRole(ctx, r); err != nil {
			if errors.Is(err, storage.ErrDuplicate) {
				return taken("name")
			}
			return err
		}
		return s.audit(ctx, AuditRoleUpdate, r.ID, "", changes)
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// DeleteRole removes a role and its grants; built-in roles are refused.
func (s *Service) DeleteRole(ctx context.Context, id string) error {
	return s.store.InTx(ctx, func(ctx context.Context) error {
		r, err := s.store.GetRole(ctx, id)
		if err != nil {
			return err
		}
		if IsBuiltInRole(r) {
			return fmt.Errorf("role %s: %w", r.Name, ErrBuiltIn)
		}
		if err := s.store.DeleteRole(ctx, id); err != nil {
			return err
		}
		return s.audit(ctx, AuditRoleDelete, id, "", map[string]any{"name": r.Name, "client_id": r.ClientID})
	})
}

// GetRole returns a role.
func (s *Service) GetRole(ctx context.Context, id string) (*storage.Role, error) {
	return s.store.GetRole(ctx, id)
}

// ListRoles returns a page of roles.
func (s *Service) ListRoles(ctx context.Context, q storage.RoleQuery) ([]storage.Role, string, error) {
	return s.store.ListRoles(ctx, q)
}

// Memberships returns a user's groups and effective roles as they are now.
func (s *Service) Memberships(ctx context.Context, userID string) (*storage.Memberships, error) {
	return s.store.UserMemberships(ctx, userID)
}

// FindRole finds a role by name, global ("" client) or of one client;
// for the CLI, where people type names rather than ids.
func (s *Service) FindRole(ctx context.Context, clientID, name string) (*storage.Role, error) {
	q := storage.RoleQuery{ClientID: clientID, GlobalOnly: clientID == "", PageQuery: storage.PageQuery{Limit: 200}}
	for {
		page, next, err := s.store.ListRoles(ctx, q)
		if err != nil {
			return nil, err
		}
		for i := range page {
			if page[i].Name == name {
				return &page[i], nil
			}
		}
		if next == "" {
			return nil, fmt.Errorf("role %q: %w", name, storage.ErrNotFound)
		}
		q.After = next
	}
}

// FindGroup finds a group by id or, failing that, by name (ignoring case).
func (s *Service) FindGroup(ctx context.Context, idOrName string) (*storage.Group, error) {
	if g, err := s.store.GetGroup(ctx, idOrName); err == nil || !errors.Is(err, storage.ErrNotFound) {
		return g, err
	}
	q := storage.PageQuery{Limit: 200}
	for {
		page, next, err := s.store.ListGroups(ctx, q)
		if err != nil {
			return nil, err
		}
		for i := range page {
			if strings.EqualFold(page[i].Name, idOrName) {
				return &page[i], nil
			}
		}
		if next == "" {
			return nil, fmt.Errorf("group %q: %w", idOrName, storage.ErrNotFound)
		}
		q.After = next
	}
}

// AdminScopesFor returns which of the requested admin scopes the person's
// effective roles grant: all of them for RoleAdmin, else the one whose
// role RoleAdminPrefix+name (scope "admin:name") they hold. Scopes that
// are not admin scopes are not its business and are left out.
func AdminScopesFor(m *storage.Memberships, requested []string) []string {
	held := map[string]bool{}
	for _, r := range m.Roles {
		if r.ClientID == "" {
			held[r.Name] = true
		}
	}
	var out []string
	for _, sc := range requested {
		if !IsAdminScope(sc) {
			continue
		}
		if held[RoleAdmin] || held[AdminRoleFor(sc)] {
			out = append(out, sc)
		}
	}
	return out
}

// IsAdminScope reports whether scope is an admin API scope ("admin" or
// "admin:…").
func IsAdminScope(scope string) bool { return scope == "admin" || strings.HasPrefix(scope, "admin:") }

// AdminRoleFor is the built-in role that grants an admin scope:
// "admin" → latchkey:admin, "admin:users.read" → latchkey:admin:users.read.
func AdminRoleFor(scope string) string {
	if scope == "admin" {
		return RoleAdmin
	}
	return RoleAdminPrefix + strings.TrimPrefix(scope, "admin:")
}
