package storage

import (
	"context"
	"errors"
	"time"
)

// This file holds authorization data (issue 11): groups, which hold
// members and may nest, and roles, which are names held by users directly
// or through their groups.

// MaxGroupDepth is how deep groups may nest: a root group is at depth 1.
// It bounds the recursive queries that walk the hierarchy.
const MaxGroupDepth = 8

// ErrCycle: the change would make a group its own ancestor.
var ErrCycle = errors.New("storage: group hierarchy would contain a cycle")

// ErrTooDeep: the change would nest groups deeper than MaxGroupDepth.
var ErrTooDeep = errors.New("storage: group hierarchy would be too deep")

// Group is a set of users carrying roles. Members of a group are members
// of its ancestors too: the parent's roles apply to them.
type Group struct {
	ID          string
	Name        string // unique, case-insensitive
	Description string
	ParentID    string // "" for a root group
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Role is a name that grants something to whoever holds it. A global role
// has no ClientID; a client role belongs to one client (and goes with it).
type Role struct {
	ID          string
	Name        string // unique among the global roles, or among one client's
	Description string
	ClientID    string // "" for a global role
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// RoleSource says where an effective role comes from: the user holds it
// directly (GroupID "") or through a group (one of theirs, or an ancestor
// of one of theirs).
type RoleSource struct {
	GroupID   string
	GroupName string
}

// EffectiveRole is a role a user holds, and every way they hold it.
type EffectiveRole struct {
	Role
	Sources []RoleSource
}

// GroupMembership is a group a user belongs to: directly, or because it
// is an ancestor of a group they belong to (Direct false).
type GroupMembership struct {
	Group
	Direct bool
}

// Memberships is a user's authorization data as of now.
type Memberships struct {
	Groups []GroupMembership // ordered by name
	Roles  []EffectiveRole   // ordered by client id ("" first), then name
}

// PageQuery pages a list by keyset: After is the cursor of the previous
// page's last row.
type PageQuery struct {
	After string
	Limit int
}

// RoleQuery filters and pages the roles. ClientID "" lists every role;
// GlobalOnly lists only the global ones.
type RoleQuery struct {
	ClientID   string
	GlobalOnly bool
	PageQuery
}

// Groups persists groups, roles, memberships and grants. Every method that
// names a group, role or user that does not exist returns ErrNotFound.
type Groups interface {
	// CreateGroup inserts g; ErrDuplicate when the name is taken,
	// ErrTooDeep when its parent is at MaxGroupDepth already.
	CreateGroup(ctx context.Context, g *Group) error
	GetGroup(ctx context.Context, id string) (*Group, error)
	// ListGroups returns a page of groups ordered by name (ignoring case).
	ListGroups(ctx context.Context, q PageQuery) ([]Group, string, error)
	// UpdateGroup writes name, description, parent and UpdatedAt;
	// ErrCycle when the new parent is the group or one of its
	// descendants, ErrTooDeep when the moved subtree would reach past
	// MaxGroupDepth. Concurrent moves are serialized, so two of them
	// cannot build a cycle together.
	UpdateGroup(ctx context.Context, g *Group) error
	// DeleteGroup removes a group with its memberships and grants;
	// ErrConflict while it has child groups.
	DeleteGroup(ctx context.Context, id string) error

	// AddGroupMember makes the user a direct member (no error when they
	// are one already).
	AddGroupMember(ctx context.Context, groupID, userID string) error
	// RemoveGroupMember ends a direct membership; ErrNotFound when there
	// is none.
	RemoveGroupMember(ctx context.Context, groupID, userID string) error
	// ListGroupMembers returns a page of the group's direct members
	// ordered by user id.
	ListGroupMembers(ctx context.Context, groupID string, q PageQuery) ([]User, string, error)

	// CreateRole inserts r; ErrDuplicate when the name is taken among the
	// roles of its client (or the global roles).
	CreateRole(ctx context.Context, r *Role) error
	GetRole(ctx context.Context, id string) (*Role, error)
	// ListRoles returns a page of roles ordered by name, then id.
	ListRoles(ctx context.Context, q RoleQuery) ([]Role, string, error)
	// UpdateRole writes name, description and UpdatedAt (a role never
	// changes client).
	UpdateRole(ctx context.Context, r *Role) error
	// DeleteRole removes a role and every grant of it.
	DeleteRole(ctx context.Context, id string) error

	// GrantGroupRole and GrantUserRole are idempotent; the Revoke
	// methods return ErrNotFound when there was no such grant.
	GrantGroupRole(ctx context.Context, groupID, roleID string) error
	RevokeGroupRole(ctx context.Context, groupID, roleID string) error
	GrantUserRole(ctx context.Context, userID, roleID string) error
	RevokeUserRole(ctx context.Context, userID, roleID string) error
	// GroupRoles returns the roles granted to the group itself.
	GroupRoles(ctx context.Context, groupID string) ([]Role, error)

	// UserMemberships returns a user's groups (direct and inherited) and
	// effective roles, as they are now. A user with none gets empty
	// slices; an unknown user gets empty slices too (callers look the
	// user up first).
	UserMemberships(ctx context.Context, userID string) (*Memberships, error)
}
