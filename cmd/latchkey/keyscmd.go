package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/internal/config"
	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/provider/keys"
	"github.com/latchkey/latchkey/storage"
)

func (e *env) keysCmd() *cobra.Command {
	cmd := groupCmd("keys", "Inspect and rotate signing keys")

	var (
		now      bool
		rotJSON  bool
		listJSON bool
		retJSON  bool
	)
	// withKeys opens the store and the key manager (creating the first
	// keys on an empty database, as serve would).
	var acc *accounts.Service
	withKeys := func(cmd *cobra.Command, fn func(ctx context.Context, m *keys.Manager) error) error {
		return e.withStore(cmd, func(ctx context.Context, cfg *config.Config, log *slog.Logger, store storage.Store) error {
			m, err := newKeyManager(cfg, store, log)
			if err != nil {
				return err
			}
			if err := m.Init(ctx); err != nil {
				return fmt.Errorf("signing keys: %w", err)
			}
			acc = newAccounts(cfg, store, log, nil)
			return fn(ctx, m)
		})
	}
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Add new signing keys; they are published at once and sign after the publish delay",
		Long: "rotate adds a new RS256 and a new ES256 key. Each is published in the JWKS at once\n" +
			"and starts signing after LATCHKEY_KEY_PUBLISH_DELAY (by default one JWKS cache\n" +
			"lifetime), so relying parties have it before they see a token it signed. The keys\n" +
			"it replaces stay in the JWKS until every token they signed has expired.\n" +
			"--now activates the new keys immediately (after a key compromise).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withKeys(cmd, func(ctx context.Context, m *keys.Manager) error {
				// The new keys and their audit events commit together, as
				// through the admin API.
				created, err := m.RotateAudited(ctx, acc, now)
				if err != nil {
					return err
				}
				if rotJSON {
					out := make([]map[string]any, 0, len(created))
					for _, k := range created {
						out = append(out, map[string]any{"kid": k.ID, "alg": k.Algorithm, "activates_at": k.ActivatesAt.UTC()})
					}
					return printJSON(e.stdout, out)
				}
				for _, k := range created {
					fmt.Fprintf(e.stdout, "new %s key %s: published now, signs from %s\n", k.Algorithm, k.ID, k.ActivatesAt.UTC().Format(time.RFC3339))
				}
				return nil
			})
		},
	}
	rotate.Flags().BoolVar(&now, "now", false, "activate the new keys immediately (emergency rotation)")
	rotate.Flags().BoolVar(&rotJSON, "json", false, "print JSON")

	list := &cobra.Command{
		Use:   "list",
		Short: "List signing keys and their state (next, active, retiring, expired)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withKeys(cmd, func(ctx context.Context, m *keys.Manager) error {
				ks, err := m.List(ctx)
				if err != nil {
					return err
				}
				if listJSON {
					return printJSON(e.stdout, ks)
				}
				t := newTable(e.stdout, "KID", "ALG", "STATE", "CREATED", "SIGNS_FROM", "RETIRED", "LEAVES_JWKS")
				ts := func(p *time.Time) string {
					if p == nil {
						return "-"
					}
					return p.UTC().Format(time.RFC3339)
				}
				for _, k := range ks {
					t.row(k.ID, k.Algorithm, k.State, k.CreatedAt.UTC().Format(time.RFC3339),
						k.ActivatesAt.UTC().Format(time.RFC3339), ts(k.RetiredAt), ts(k.ExpiresAt))
				}
				return t.flush()
			})
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")

	retire := &cobra.Command{
		Use:   "retire KID",
		Short: "Stop signing with a key now; it stays in the JWKS until its tokens expire",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withKeys(cmd, func(ctx context.Context, m *keys.Manager) error {
				if err := m.RetireAudited(ctx, acc, args[0]); err != nil {
					return err
				}
				if retJSON {
					return printJSON(e.stdout, map[string]any{"kid": args[0], "retired": true})
				}
				fmt.Fprintf(e.stdout, "retired key %s\n", args[0])
				return nil
			})
		},
	}
	retire.Flags().BoolVar(&retJSON, "json", false, "print JSON")
	cmd.AddCommand(rotate, list, retire)
	return cmd
}
