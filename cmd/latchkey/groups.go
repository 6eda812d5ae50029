package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/internal/config"
	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
)

// The groups and roles commands (issue 11): the same rules and audit log
// as the admin API, for operators at the shell. Groups are named by id or
// name, roles by id or name (with --client for a client role), users by
// id, username or email.

type groupJSON struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	ParentID    string `json:"parent_id,omitempty"`
}

type roleJSON struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	ClientID    string `json:"client_id,omitempty"`
	BuiltIn     bool   `json:"built_in"`
}

func toGroupJSON(g *storage.Group) groupJSON {
	return groupJSON{ID: g.ID, Name: g.Name, Description: g.Description, ParentID: g.ParentID}
}

func toRoleJSON(r *storage.Role) roleJSON {
	return roleJSON{ID: r.ID, Name: r.Name, Description: r.Description, ClientID: r.ClientID, BuiltIn: accounts.IsBuiltInRole(r)}
}

func resolveGroup(ctx context.Context, svc *accounts.Service, arg string) (*storage.Group, error) {
	g, err := svc.FindGroup(ctx, arg)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("group %q not found", arg)
	}
	return g, err
}

func resolveRole(ctx context.Context, svc *accounts.Service, clientID, arg string) (*storage.Role, error) {
	if r, err := svc.GetRole(ctx, arg); err == nil {
		return r, nil
	} else if !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	r, err := svc.FindRole(ctx, clientID, arg)
	if errors.Is(err, storage.ErrNotFound) {
		if clientID != "" {
			return nil, fmt.Errorf("role %q of client %s not found", arg, clientID)
		}
		return nil, fmt.Errorf("role %q not found (a client role needs --client)", arg)
	}
	return r, err
}

func (e *env) groupsCmd() *cobra.Command {
	cmd := groupCmd("groups", "Manage groups (members carry the groups' roles; the groups claim lists them)")

	var desc, parent string
	var createJSON bool
	create := &cobra.Command{
		Use:   "create NAME [--description D] [--parent GROUP]",
		Short: "Create a group, optionally under a parent group",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withStore(cmd, func(ctx context.Context, cfg *config.Config, log *slog.Logger, store storage.Store) error {
				svc := newAccountsFor(cfg, store, log)
				spec := accounts.GroupSpec{Name: &args[0], Description: &desc}
				if parent != "" {
					p, err := resolveGroup(ctx, svc, parent)
					if err != nil {
						return err
					}
					spec.ParentID = &p.ID
				}
				g, err := svc.CreateGroup(ctx, spec)
				if err != nil {
					return flagError(err)
				}
				if createJSON {
					return printJSON(e.stdout, toGroupJSON(g))
				}
				fmt.Fprintf(e.stdout, "created group %s (%s)\n", g.Name, g.ID)
				return nil
			})
		},
	}
	create.Flags().StringVar(&desc, "description", "", "what the group is for")
	create.Flags().StringVar(&parent, "parent", "", "the parent group (id or name): its roles apply to this group's members")
	create.Flags().BoolVar(&createJSON, "json", false, "print JSON")

	var listJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List groups by name",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.withStore(cmd, func(ctx context.Context, cfg *config.Config, log *slog.Logger, store storage.Store) error {
				svc := newAccountsFor(cfg, store, log)
				var all []storage.Group
				q := storage.PageQuery{Limit: 200}
				for {
					page, next, err := svc.ListGroups(ctx, q)
					if err != nil {
						return err
					}
					all = append(all, page...)
					if next == "" {
						break
					}
					q.After = next
				}
				if listJSON {
					out := make([]groupJSON, 0, len(all))
					for i := range all {
						out = append(out, toGroupJSON(&all[i]))
					}
					return printJSON(e.stdout, out)
				}
				names := map[string]string{}
				for _, g := range all {
					names[g.ID] = g.Name
				}
				t := newTable(e.stdout, "ID", "NAME", "PARENT", "DESCRIPTION")
				for _, g := range all {
					t.row(g.ID, g.Name, names[g.ParentID], g.Description)
				}
				return t.flush()
			})
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")

	member := func(use, short string, add bool) *cobra.Command {
		return &cobra.Command{
			Use:   use + " GROUP USER",
			Short: short,
			Args:  cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				return e.withStore(cmd, func(ctx context.Context, cfg *config.Config, log *slog.Logger, store storage.Store) error {
					svc := newAccountsFor(cfg, store, log)
					g, err := resolveGroup(ctx, svc, args[0])
					if err != nil {
						return err
					}
					u, err := resolveUser(ctx, svc, args[1])
					if err != nil {
						return err
					}
					if add {
						err = svc.AddGroupMember(ctx, g.ID, u.ID)
					} else {
						err = svc.RemoveGroupMember(ctx, g.ID, u.ID)
						if errors.Is(err, storage.ErrNotFound) {
							return fmt.Errorf("%s is not a direct member of %s", u.Username, g.Name)
						}
					}
					if err != nil {
						return err
					}
					verb := map[bool]string{true: "added %s to %s\n", false: "removed %s from %s\n"}[add]
					fmt.Fprintf(e.stdout, verb, u.Username, g.Name)
					return nil
				})
			},
		}
	}
	cmd.AddCommand(create, list, member("add-member", "Make a user a direct member of a group", true),
		member("remove-member", "End a user's direct membership of a group", false))
	return cmd
}

func (e *env) rolesCmd() *cobra.Command {
	cmd := groupCmd("roles", "Manage roles (global, or one client's) and who holds them")

	var client, desc string
	var createJSON bool
	create := &cobra.Command{
		Use:   "create NAME [--client ID] [--description D]",
		Short: "Create a global role, or with --client a role of that client",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withStore(cmd, func(ctx context.Context, cfg *config.Config, log *slog.Logger, store storage.Store) error {
				r, err := newAccountsFor(cfg, store, log).CreateRole(ctx, accounts.RoleSpec{Name: &args[0], Description: &desc, ClientID: &client})
				if err != nil {
					return flagError(err)
				}
				if createJSON {
					return printJSON(e.stdout, toRoleJSON(r))
				}
				fmt.Fprintf(e.stdout, "created role %s (%s)\n", r.Name, r.ID)
				return nil
			})
		},
	}
	create.Flags().StringVar(&client, "client", "", "the client the role belongs to (omit for a global role)")
	create.Flags().StringVar(&desc, "description", "", "what the role allows")
	create.Flags().BoolVar(&createJSON, "json", false, "print JSON")

	var listClient string
	var listJSON bool
	list := &cobra.Command{
		Use:   "list [--client ID]",
		Short: "List roles by name (built-in latchkey: roles included)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.withStore(cmd, func(ctx context.Context, cfg *config.Config, log *slog.Logger, store storage.Store) error {
				svc := newAccountsFor(cfg, store, log)
				var all []storage.Role
				q := storage.RoleQuery{ClientID: listClient, PageQuery: storage.PageQuery{Limit: 200}}
				for {
					page, next, err := svc.ListRoles(ctx, q)
					if err != nil {
						return err
					}
					all = append(all, page...)
					if next == "" {
						break
					}
					q.After = next
				}
				if listJSON {
					out := make([]roleJSON, 0, len(all))
					for i := range all {
						out = append(out, toRoleJSON(&all[i]))
					}
					return printJSON(e.stdout, out)
				}
				t := newTable(e.stdout, "ID", "NAME", "CLIENT", "DESCRIPTION")
				for _, r := range all {
					t.row(r.ID, r.Name, r.ClientID, r.Description)
				}
				return t.flush()
			})
		},
	}
	list.Flags().StringVar(&listClient, "client", "", "only this client's roles")
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")

	grant := func(use, short string, give bool) *cobra.Command {
		var user, group, roleClient string
		c := &cobra.Command{
			Use:   use + " ROLE (--user USER | --group GROUP) [--client ID]",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if (user == "") == (group == "") {
					return errors.New("give exactly one of --user and --group")
				}
				return e.withStore(cmd, func(ctx context.Context, cfg *config.Config, log *slog.Logger, store storage.Store) error {
					svc := newAccountsFor(cfg, store, log)
					r, err := resolveRole(ctx, svc, roleClient, args[0])
					if err != nil {
						return err
					}
					var who string
					if user != "" {
						u, err := resolveUser(ctx, svc, user)
						if err != nil {
							return err
						}
						who = "user " + u.Username
						if give {
							err = svc.GrantUserRole(ctx, u.ID, r.ID)
						} else {
							err = svc.RevokeUserRole(ctx, u.ID, r.ID)
						}
						if err != nil {
							return noGrant(err, who, r)
						}
					} else {
						g, err := resolveGroup(ctx, svc, group)
						if err != nil {
							return err
						}
						who = "group " + g.Name
						if give {
							err = svc.GrantGroupRole(ctx, g.ID, r.ID)
						} else {
							err = svc.RevokeGroupRole(ctx, g.ID, r.ID)
						}
						if err != nil {
							return noGrant(err, who, r)
						}
					}
					verb := map[bool]string{true: "granted %s to %s\n", false: "revoked %s from %s\n"}[give]
					fmt.Fprintf(e.stdout, verb, r.Name, who)
					return nil
				})
			},
		}
		c.Flags().StringVar(&user, "user", "", "the user (id, username or email)")
		c.Flags().StringVar(&group, "group", "", "the group (id or name)")
		c.Flags().StringVar(&roleClient, "client", "", "the client whose role ROLE is (for a client role named by name)")
		return c
	}
	cmd.AddCommand(create, list, grant("grant", "Give a user or a group a role", true),
		grant("revoke", "Take a role from a user or a group", false))
	return cmd
}

func noGrant(err error, who string, r *storage.Role) error {
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%s does not hold %s directly", who, strings.TrimSpace(r.Name))
	}
	return err
}
