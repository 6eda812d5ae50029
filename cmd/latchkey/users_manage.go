package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/internal/config"
	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
)

// userJSON is a user as the CLI prints it: what an operator needs, never
// the password hash.
type userJSON struct {
	ID            string     `json:"id"`
	Username      string     `json:"username"`
	Email         string     `json:"email"`
	EmailVerified bool       `json:"email_verified"`
	DisplayName   string     `json:"display_name"`
	Status        string     `json:"status"`
	Tier          string     `json:"tier,omitempty"`
	HasPassword   bool       `json:"has_password"`
	LockedUntil   *time.Time `json:"locked_until,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	DeletedAt     *time.Time `json:"deleted_at,omitempty"`
}

func toUserJSON(u *storage.User) userJSON {
	return userJSON{ID: u.ID, Username: u.Username, Email: u.Email, EmailVerified: u.EmailVerified,
		DisplayName: u.DisplayName, Status: string(u.Status), Tier: u.TierID, HasPassword: u.PasswordHash != "",
		LockedUntil: u.LockedUntil, CreatedAt: u.CreatedAt.UTC(), DeletedAt: u.DeletedAt}
}

// resolveUser finds a user by id (u_…), username or email, whatever its
// status.
func resolveUser(ctx context.Context, svc *accounts.Service, arg string) (*storage.User, error) {
	var u *storage.User
	var err error
	if strings.HasPrefix(arg, "u_") {
		u, err = svc.GetUserAny(ctx, arg)
	} else {
		u, err = svc.FindUser(ctx, strings.ToLower(arg))
	}
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("user %q not found", arg)
	}
	return u, err
}

// manageUsersCmds are the operator's user commands beyond create and
// unlock: list, get and the lifecycle changes, each through the same rules
// (and audit events) as the admin API.
func (e *env) manageUsersCmds() []*cobra.Command {
	var (
		q      storage.UserQuery
		status string
		asJSON bool
	)
	list := &cobra.Command{
		Use:   "list [--q TEXT] [--status S] [--limit N] [--after CURSOR]",
		Short: "List users (newest first), with the admin API's search",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.withStore(cmd, func(ctx context.Context, cfg *config.Config, log *slog.Logger, store storage.Store) error {
				q.Status = storage.UserStatus(status)
				page, err := newAccounts(cfg, store, log, nil).SearchUsers(ctx, q)
				if err != nil {
					return flagError(err)
				}
				if asJSON {
					out := struct {
						Users []userJSON `json:"users"`
						Next  string     `json:"next,omitempty"`
					}{Users: make([]userJSON, 0, len(page.Users)), Next: page.Next}
					for i := range page.Users {
						out.Users = append(out.Users, toUserJSON(&page.Users[i]))
					}
					return printJSON(e.stdout, out)
				}
				tw := newTable(e.stdout, "ID", "USERNAME", "EMAIL", "STATUS", "CREATED")
				for _, u := range page.Users {
					tw.row(u.ID, u.Username, u.Email, u.Status, u.CreatedAt.UTC().Format(time.RFC3339))
				}
				if err := tw.flush(); err != nil {
					return err
				}
				if page.Next != "" {
					fmt.Fprintf(e.stdout, "more: --after %s\n", page.Next)
				}
				return nil
			})
		},
	}
	lf := list.Flags()
	lf.StringVar(&q.Q, "q", "", "substring of the username, email or display name")
	lf.StringVar(&status, "status", "", "active, suspended or deleted")
	lf.IntVar(&q.Limit, "limit", 50, "users per page (at most 500)")
	lf.StringVar(&q.After, "after", "", "the cursor printed after the previous page")
	lf.BoolVar(&asJSON, "json", false, "print JSON")

	var getJSON bool
	get := &cobra.Command{
		Use:   "get ID|USERNAME|EMAIL",
		Short: "Show one user",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withStore(cmd, func(ctx context.Context, cfg *config.Config, log *slog.Logger, store storage.Store) error {
				u, err := resolveUser(ctx, newAccounts(cfg, store, log, nil), args[0])
				if err != nil {
					return err
				}
				if getJSON {
					return printJSON(e.stdout, toUserJSON(u))
				}
				v := toUserJSON(u)
				tw := newTable(e.stdout, "FIELD", "VALUE")
				for _, r := range [][2]any{{"id", v.ID}, {"username", v.Username}, {"email", v.Email},
					{"email_verified", v.EmailVerified}, {"display_name", v.DisplayName}, {"status", v.Status},
					{"tier", v.Tier}, {"has_password", v.HasPassword}, {"created_at", v.CreatedAt.Format(time.RFC3339)}} {
					tw.row(r[0], r[1])
				}
				return tw.flush()
			})
		},
	}
	get.Flags().BoolVar(&getJSON, "json", false, "print JSON")

	// change makes one lifecycle command: a user argument, a --reason
	// (required where the rules require it), the change, and its output.
	change := func(use, short, done string, op func(ctx context.Context, svc *accounts.Service, id, reason string, hard bool) (*storage.User, error), withHard bool) *cobra.Command {
		var reason string
		var hard, asJSON bool
		c := &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return e.withStore(cmd, func(ctx context.Context, cfg *config.Config, log *slog.Logger, store storage.Store) error {
					svc := newAccounts(cfg, store, log, nil)
					u, err := resolveUser(ctx, svc, args[0])
					if err != nil {
						return err
					}
					after, err := op(ctx, svc, u.ID, reason, hard)
					if errors.Is(err, accounts.ErrGraceOver) {
						return fmt.Errorf("%s was deleted too long ago to be restored", u.Username)
					}
					if err != nil {
						return flagError(err)
					}
					if asJSON {
						if after == nil {
							return printJSON(e.stdout, map[string]any{"id": u.ID, "username": u.Username, "deleted": "hard"})
						}
						return printJSON(e.stdout, toUserJSON(after))
					}
					fmt.Fprintf(e.stdout, "%s %s (%s)\n", done, u.Username, u.ID)
					return nil
				})
			},
		}
		c.Flags().StringVar(&reason, "reason", "", "why (kept in the audit log)")
		c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
		if withHard {
			c.Flags().BoolVar(&hard, "hard", false, "delete for good, keeping only an archive record (needs --reason)")
		}
		return c
	}
	suspend := change("suspend ID|USERNAME|EMAIL --reason R", "Suspend a user: signs them out and revokes their tokens", "suspended",
		func(ctx context.Context, svc *accounts.Service, id, reason string, _ bool) (*storage.User, error) {
			return svc.Suspend(ctx, id, reason)
		}, false)
	unsuspend := change("unsuspend ID|USERNAME|EMAIL --reason R", "Lift a suspension", "unsuspended",
		func(ctx context.Context, svc *accounts.Service, id, reason string, _ bool) (*storage.User, error) {
			return svc.Unsuspend(ctx, id, reason)
		}, false)
	del := change("delete ID|USERNAME|EMAIL [--hard --reason R]", "Delete a user (restorable within the grace period unless --hard)", "deleted",
		func(ctx context.Context, svc *accounts.Service, id, reason string, hard bool) (*storage.User, error) {
			if hard {
				return nil, svc.HardDelete(ctx, id, reason)
			}
			return svc.SoftDelete(ctx, id, reason)
		}, true)
	restore := change("restore ID|USERNAME|EMAIL", "Restore a deleted user within the grace period", "restored",
		func(ctx context.Context, svc *accounts.Service, id, reason string, _ bool) (*storage.User, error) {
			return svc.Restore(ctx, id, reason)
		}, false)
	return []*cobra.Command{list, get, suspend, unsuspend, del, restore, e.resetMFACmd()}
}

// resetMFACmd removes a user's second factors and recovery codes (a lost
// phone), signing them out everywhere: their next sign-in is with the
// password alone, or enrolment when a policy requires a factor.
func (e *env) resetMFACmd() *cobra.Command {
	var reason string
	var asJSON bool
	c := &cobra.Command{
		Use:   "reset-mfa ID|USERNAME|EMAIL [--reason R]",
		Short: "Remove a user's two-step verification (every factor and recovery code) and sign them out",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withStore(cmd, func(ctx context.Context, cfg *config.Config, log *slog.Logger, store storage.Store) error {
				svc := newAccounts(cfg, store, log, nil)
				u, err := resolveUser(ctx, svc, args[0])
				if err != nil {
					return err
				}
				n, err := svc.ResetFactors(ctx, u.ID, reason)
				if err != nil {
					return flagError(err)
				}
				if asJSON {
					return printJSON(e.stdout, map[string]any{"id": u.ID, "username": u.Username, "factors_removed": n})
				}
				fmt.Fprintf(e.stdout, "removed %d second factor(s) of %s (%s) and signed them out\n", n, u.Username, u.ID)
				return nil
			})
		},
	}
	c.Flags().StringVar(&reason, "reason", "", "why (kept in the audit log)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
