package main

import (
	"bufio"
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

func (e *env) usersCmd() *cobra.Command {
	cmd := groupCmd("users", "Manage users")
	var (
		nu            accounts.NewUser
		passwordStdin bool
		asJSON        bool
	)
	create := &cobra.Command{
		Use:   "create --username U --email E --password-stdin",
		Short: "Create a user; the password is read from the first line of standard input",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if passwordStdin {
				line, err := bufio.NewReader(e.stdin).ReadString('\n')
				if err != nil && line == "" {
					return errors.New("--password-stdin: no password on standard input")
				}
				nu.Password = strings.TrimRight(line, "\r\n")
				if nu.Password == "" {
					return errors.New("--password-stdin: the password is empty")
				}
			}
			return e.withStore(cmd, func(ctx context.Context, cfg *config.Config, log *slog.Logger, store storage.Store) error {
				u, err := newAccounts(cfg, store, log, nil).CreateUser(ctx, nu)
				var ve *accounts.ValidationError
				if errors.As(err, &ve) && ve.Field == "password" {
					return fmt.Errorf("--password-stdin: %s", ve.Message)
				}
				if err != nil {
					return flagError(err)
				}
				if asJSON {
					return printJSON(e.stdout, struct {
						ID            string    `json:"id"`
						Username      string    `json:"username"`
						Email         string    `json:"email"`
						EmailVerified bool      `json:"email_verified"`
						CreatedAt     time.Time `json:"created_at"`
					}{u.ID, u.Username, u.Email, u.EmailVerified, u.CreatedAt.UTC()})
				}
				fmt.Fprintf(e.stdout, "created user %s (%s)\n", u.Username, u.ID)
				return nil
			})
		},
	}
	f := create.Flags()
	f.StringVar(&nu.Username, "username", "", "username (lowercase letters, digits, '.', '_', '-')")
	f.StringVar(&nu.Email, "email", "", "email address")
	f.StringVar(&nu.DisplayName, "display-name", "", "display name (the OIDC name claim)")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the password from standard input (without it, the user has no password)")
	f.BoolVar(&nu.EmailVerified, "email-verified", false, "mark the email address as verified")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	var unlockJSON bool
	unlock := &cobra.Command{
		Use:   "unlock USERNAME|EMAIL",
		Short: "Clear a sign-in lockout after too many failed attempts",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withStore(cmd, func(ctx context.Context, cfg *config.Config, log *slog.Logger, store storage.Store) error {
				u, err := store.GetUserByLogin(ctx, args[0])
				if errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("user %q not found", args[0])
				}
				if err != nil {
					return err
				}
				if err := newAccounts(cfg, store, log, nil).ClearLockout(ctx, u.ID); err != nil {
					return err
				}
				if unlockJSON {
					return printJSON(e.stdout, map[string]any{"id": u.ID, "username": u.Username, "unlocked": true})
				}
				fmt.Fprintf(e.stdout, "cleared the lockout of %s\n", u.Username)
				return nil
			})
		},
	}
	unlock.Flags().BoolVar(&unlockJSON, "json", false, "print JSON")
	cmd.AddCommand(create, unlock)
	cmd.AddCommand(e.manageUsersCmds()...)
	return cmd
}
