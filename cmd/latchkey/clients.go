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

// clientJSON is how the CLI shows a client; the secret appears only once,
// in the output of `clients create`.
type clientJSON struct {
	ID                     string    `json:"client_id"`
	Secret                 string    `json:"client_secret,omitempty"`
	Name                   string    `json:"name"`
	RedirectURIs           []string  `json:"redirect_uris"`
	PostLogoutRedirectURIs []string  `json:"post_logout_redirect_uris"`
	GrantTypes             []string  `json:"grant_types"`
	Scopes                 []string  `json:"scopes"`
	Public                 bool      `json:"public"`
	FirstParty             bool      `json:"first_party"`
	AccessTokenFormat      string    `json:"access_token_format"`
	CreatedAt              time.Time `json:"created_at"`
}

func toClientJSON(c *storage.Client, secret string) clientJSON {
	nz := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	return clientJSON{
		ID: c.ID, Secret: secret, Name: c.Name,
		RedirectURIs: nz(c.RedirectURIs), PostLogoutRedirectURIs: nz(c.PostLogoutRedirectURIs),
		GrantTypes: nz(c.GrantTypes), Scopes: nz(c.Scopes), Public: c.Public, FirstParty: c.FirstParty,
		AccessTokenFormat: string(c.AccessTokenFormat), CreatedAt: c.CreatedAt.UTC(),
	}
}

// newAccountsFor builds the accounts service the CLI commands use.
func newAccountsFor(cfg *config.Config, store storage.Store, log *slog.Logger) *accounts.Service {
	return newAccounts(cfg, store, log, nil)
}

func (e *env) clientsCmd() *cobra.Command {
	cmd := groupCmd("clients", "Manage OAuth clients (relying parties)")

	var (
		spec    accounts.ClientSpec
		scope   string
		format  string
		asJSON  bool
		isAdmin bool
	)
	create := &cobra.Command{
		Use:   "create --name NAME [flags]",
		Short: "Register a client; prints its id and, for confidential clients, its secret (shown once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("scope") {
				spec.Scopes = strings.Fields(scope)
			}
			if isAdmin {
				// An admin API client: a confidential service that gets
				// tokens for itself and may ask for any admin scope.
				if spec.Public {
					return errors.New("--admin: an admin client cannot be public")
				}
				if len(spec.GrantTypes) == 0 {
					spec.GrantTypes = []string{"client_credentials"}
				}
				if !cmd.Flags().Changed("scope") {
					spec.Scopes = AdminScopes
				}
				if spec.Name == "" {
					spec.Name = "Latchkey admin"
				}
			}
			spec.AccessTokenFormat = storage.AccessTokenFormat(format)
			return e.withStore(cmd, func(ctx context.Context, cfg *config.Config, log *slog.Logger, store storage.Store) error {
				c, secret, err := newAccountsFor(cfg, store, log).CreateClient(ctx, spec)
				if err != nil {
					return flagError(err)
				}
				if asJSON {
					return printJSON(e.stdout, toClientJSON(c, secret))
				}
				fmt.Fprintf(e.stdout, "client_id:     %s\n", c.ID)
				if secret != "" {
					fmt.Fprintf(e.stdout, "client_secret: %s\n(the secret is shown only now; store it safely)\n", secret)
				}
				return nil
			})
		},
	}
	f := create.Flags()
	f.StringVar(&spec.Name, "name", "", "display name shown on the consent page (required)")
	f.StringArrayVar(&spec.RedirectURIs, "redirect-uri", nil, "allowed redirect URI, matched exactly; no user@ part; a --public client's http://127.0.0.1 or http://[::1] URI accepts any port (repeatable)")
	f.StringArrayVar(&spec.PostLogoutRedirectURIs, "post-logout-redirect-uri", nil, "allowed post-logout redirect URI (repeatable)")
	f.StringArrayVar(&spec.GrantTypes, "grant-type", nil, "authorization_code, refresh_token or client_credentials (repeatable; default authorization_code and refresh_token)")
	f.StringVar(&scope, "scope", "", `space-separated scopes the client may request (default "openid profile email offline_access")`)
	f.BoolVar(&spec.Public, "public", false, "public client (no secret; PKCE required)")
	f.BoolVar(&spec.FirstParty, "first-party", false, "skip the consent page for this client")
	f.StringVar(&format, "access-token-format", "opaque", "opaque or jwt (RFC 9068)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.BoolVar(&isAdmin, "admin", false, "an admin API client: client_credentials with every admin scope (bootstraps the first admin)")

	var listJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List clients",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.withStore(cmd, func(ctx context.Context, cfg *config.Config, log *slog.Logger, store storage.Store) error {
				cs, err := newAccountsFor(cfg, store, log).ListClients(ctx)
				if err != nil {
					return err
				}
				if listJSON {
					out := make([]clientJSON, 0, len(cs))
					for i := range cs {
						out = append(out, toClientJSON(&cs[i], ""))
					}
					return printJSON(e.stdout, out)
				}
				t := newTable(e.stdout, "CLIENT_ID", "NAME", "TYPE", "GRANT_TYPES", "REDIRECT_URIS")
				for _, c := range cs {
					typ := "confidential"
					if c.Public {
						typ = "public"
					}
					t.row(c.ID, c.Name, typ, strings.Join(c.GrantTypes, ","), strings.Join(c.RedirectURIs, " "))
				}
				return t.flush()
			})
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")

	var delJSON bool
	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a client and every token issued to it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withStore(cmd, func(ctx context.Context, cfg *config.Config, log *slog.Logger, store storage.Store) error {
				err := newAccountsFor(cfg, store, log).DeleteClient(ctx, args[0])
				if errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("client %q not found", args[0])
				}
				if err != nil {
					return err
				}
				if delJSON {
					return printJSON(e.stdout, map[string]any{"client_id": args[0], "deleted": true})
				}
				fmt.Fprintf(e.stdout, "deleted client %s\n", args[0])
				return nil
			})
		},
	}
	del.Flags().BoolVar(&delJSON, "json", false, "print JSON")
	cmd.AddCommand(create, list, del)
	return cmd
}

// AdminScopes are the scopes of the admin API; `admin` grants them all.
var AdminScopes = []string{"admin", "admin:users.read", "admin:users.write", "admin:users.search.basic",
	"admin:tiers", "admin:clients", "admin:keys", "admin:audit"}

// flagError turns an accounts validation error into one that names the
// command-line flag.
func flagError(err error) error {
	var ve *accounts.ValidationError
	if errors.As(err, &ve) {
		return fmt.Errorf("--%s: %s", strings.ReplaceAll(ve.Field, "_", "-"), ve.Message)
	}
	return err
}
