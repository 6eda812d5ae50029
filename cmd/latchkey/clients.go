package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/admin"
	"github.com/latchkey/latchkey/internal/config"
	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
)

// clientJSON is how the CLI shows a client; the secret appears only once,
// in the output of `clients create`.
type clientJSON struct {
	ID                     string            `json:"client_id"`
	Secret                 string            `json:"client_secret,omitempty"`
	Name                   string            `json:"name"`
	RedirectURIs           []string          `json:"redirect_uris"`
	PostLogoutRedirectURIs []string          `json:"post_logout_redirect_uris"`
	GrantTypes             []string          `json:"grant_types"`
	Scopes                 []string          `json:"scopes"`
	Audience               []string          `json:"audience"`
	Public                 bool              `json:"public"`
	FirstParty             bool              `json:"first_party"`
	RequireMFA             bool              `json:"require_mfa"`
	AccessTokenFormat      string            `json:"access_token_format"`
	Claims                 map[string]string `json:"claims,omitempty"`
	ClaimsScope            string            `json:"claims_scope,omitempty"`
	CreatedAt              time.Time         `json:"created_at"`
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
		GrantTypes: nz(c.GrantTypes), Scopes: nz(c.Scopes), Audience: nz(c.Audience), Public: c.Public, FirstParty: c.FirstParty,
		RequireMFA: c.RequireMFA, AccessTokenFormat: string(c.AccessTokenFormat), CreatedAt: c.CreatedAt.UTC(),
		Claims: c.Claims, ClaimsScope: c.ClaimsScope,
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
		claims  []string
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
					spec.Scopes = admin.AllScopes()
				}
				if spec.Name == "" {
					spec.Name = "Latchkey admin"
				}
			}
			spec.AccessTokenFormat = storage.AccessTokenFormat(format)
			var err error
			if spec.Claims, err = parseClaimFlags(claims); err != nil {
				return err
			}
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
	f.StringArrayVar(&spec.GrantTypes, "grant-type", nil, strings.Join(accounts.GrantTypes(), ", ")+" (repeatable; default authorization_code and refresh_token)")
	f.StringVar(&scope, "scope", "", `space-separated scopes the client may request (default "openid profile email offline_access")`)
	f.StringArrayVar(&spec.Audience, "audience", nil, audienceUsage+" (repeatable)")
	f.BoolVar(&spec.Public, "public", false, "public client (no secret; PKCE required)")
	f.BoolVar(&spec.FirstParty, "first-party", false, "skip the consent page for this client")
	f.BoolVar(&spec.RequireMFA, "require-mfa", false, requireMFAUsage)
	f.StringVar(&format, "access-token-format", "opaque", "opaque or jwt (RFC 9068)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.BoolVar(&isAdmin, "admin", false, "an admin API client: client_credentials with every admin scope (bootstraps the first admin)")
	f.StringArrayVar(&claims, "claim", nil, claimUsage+" (repeatable)")
	f.StringVar(&spec.ClaimsScope, "claims-scope", "", "the scope that releases the --claim claims (default profile)")

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
	cmd.AddCommand(create, e.clientsUpdateCmd(), list, del)
	return cmd
}

const requireMFAUsage = "every sign-in to this client must use a second factor; a user without one enrols first"

const audienceUsage = "resource server (an absolute URI) the client may ask access tokens for with resource= (RFC 8707); " +
	"a token asked for none is for the client itself"

// clientsUpdateCmd is `clients update ID`: only the flags given change,
// through the same rules as the admin API's PATCH (accounts.UpdateClient).
func (e *env) clientsUpdateCmd() *cobra.Command {
	var (
		name, scope, format                      string
		redirects, logoutRedirects, grants, auds []string
		firstParty, requireMFA, asJSON           bool
		claims                                   []string
		claimsScope                              string
	)
	cmd := &cobra.Command{
		Use:   "update ID [flags]",
		Short: "Change a client: only the flags given change; a repeatable flag replaces the whole list (--audience '' empties it)",
		Long: "update changes a registered client with the rules of registration. A repeatable flag given replaces\n" +
			"the whole list; give it once with an empty value to empty the list. Changing the scopes, or removing\n" +
			"an audience, revokes the client's tokens.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var up accounts.ClientUpdate
			fl := cmd.Flags()
			list := func(flag string, v []string) *[]string {
				if !fl.Changed(flag) {
					return nil
				}
				out := []string{}
				for _, s := range v {
					if s != "" {
						out = append(out, s)
					}
				}
				return &out
			}
			up.RedirectURIs = list("redirect-uri", redirects)
			up.PostLogoutRedirectURIs = list("post-logout-redirect-uri", logoutRedirects)
			up.GrantTypes = list("grant-type", grants)
			up.Audience = list("audience", auds)
			if fl.Changed("scope") {
				sc := strings.Fields(scope)
				up.Scopes = &sc
			}
			if fl.Changed("name") {
				up.Name = &name
			}
			if fl.Changed("first-party") {
				up.FirstParty = &firstParty
			}
			if fl.Changed("require-mfa") {
				up.RequireMFA = &requireMFA
			}
			if fl.Changed("access-token-format") {
				f := storage.AccessTokenFormat(format)
				up.AccessTokenFormat = &f
			}
			if fl.Changed("claim") {
				m, err := parseClaimFlags(claims)
				if err != nil {
					return err
				}
				up.Claims = &m
			}
			if fl.Changed("claims-scope") {
				up.ClaimsScope = &claimsScope
			}
			return e.withStore(cmd, func(ctx context.Context, cfg *config.Config, log *slog.Logger, store storage.Store) error {
				c, err := newAccountsFor(cfg, store, log).UpdateClient(ctx, args[0], up)
				if errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("client %q not found", args[0])
				}
				if err != nil {
					return flagError(err)
				}
				if asJSON {
					return printJSON(e.stdout, toClientJSON(c, ""))
				}
				fmt.Fprintf(e.stdout, "updated client %s\n", c.ID)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "display name shown on the consent page")
	f.StringArrayVar(&redirects, "redirect-uri", nil, "allowed redirect URI, matched exactly (repeatable; replaces the list)")
	f.StringArrayVar(&logoutRedirects, "post-logout-redirect-uri", nil, "allowed post-logout redirect URI (repeatable; replaces the list)")
	f.StringArrayVar(&grants, "grant-type", nil, strings.Join(accounts.GrantTypes(), ", ")+" (repeatable; replaces the list)")
	f.StringVar(&scope, "scope", "", "space-separated scopes the client may request (replaces them; revokes the client's tokens)")
	f.StringArrayVar(&auds, "audience", nil, audienceUsage+" (repeatable; replaces the list; removing one revokes the client's tokens)")
	f.BoolVar(&firstParty, "first-party", false, "skip the consent page for this client (--first-party=false asks again)")
	f.BoolVar(&requireMFA, "require-mfa", false, requireMFAUsage+" (--require-mfa=false stops requiring it)")
	f.StringVar(&format, "access-token-format", "", "opaque or jwt (RFC 9068)")
	f.BoolVar(&asJSON, "json", false, "print the client as JSON")
	f.StringArrayVar(&claims, "claim", nil, claimUsage+" (repeatable; replaces them; --claim '' removes all)")
	f.StringVar(&claimsScope, "claims-scope", "", "the scope that releases the --claim claims (default profile)")
	return cmd
}

const claimUsage = "a custom claim from the user's metadata, NAME=app_metadata.PATH or NAME=user_metadata.PATH " +
	"(e.g. department=app_metadata.department)"

// parseClaimFlags reads --claim NAME=SOURCE flags ("" entries are skipped).
func parseClaimFlags(flags []string) (map[string]string, error) {
	out := map[string]string{}
	for _, f := range flags {
		if f == "" {
			continue
		}
		name, src, ok := strings.Cut(f, "=")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("--claim %q: want NAME=app_metadata.PATH or NAME=user_metadata.PATH", f)
		}
		out[strings.TrimSpace(name)] = strings.TrimSpace(src)
	}
	return out, nil
}

// flagError turns an accounts validation error into one that names the
// command-line flag.
func flagError(err error) error {
	var ve *accounts.ValidationError
	if errors.As(err, &ve) {
		return fmt.Errorf("--%s: %s", strings.ReplaceAll(ve.Field, "_", "-"), ve.Message)
	}
	return err
}
