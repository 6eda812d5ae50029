package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/internal/config"
	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/storage"
)

// sealedColumns names each sealed column for people and says which key
// purpose sealed it.
var sealedColumns = []struct {
	column, purpose, what string
}{
	{storage.SealedSigningKeys, secret.PurposeSigningKeys, "signing keys"},
	{storage.SealedTOTP, secret.PurposeTOTP, "TOTP secrets"},
	{storage.SealedMail, secret.PurposeMailOutbox, "queued emails"},
	{storage.SealedClientJWT, secret.PurposeClientJWT, "client_secret_jwt secrets"},
}

func (e *env) secretsCmd() *cobra.Command {
	cmd := groupCmd("secrets", "Rotate LATCHKEY_SECRET")
	var asJSON bool
	reseal := &cobra.Command{
		Use:   "reseal",
		Short: "Re-seal every stored signing key, TOTP secret and queued email under the current LATCHKEY_SECRET",
		Long: "reseal opens every sealed value in the database with LATCHKEY_SECRET or one of\n" +
			"LATCHKEY_PREVIOUS_SECRETS and seals what a previous secret sealed under the current\n" +
			"one, in one transaction, and reports how many rows it changed. Run it after every\n" +
			"replica runs with the new LATCHKEY_SECRET (and the old one in\n" +
			"LATCHKEY_PREVIOUS_SECRETS); running it again changes nothing. A value no secret\n" +
			"opens stops it and changes nothing.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.withStore(cmd, func(ctx context.Context, cfg *config.Config, log *slog.Logger, store storage.Store) error {
				counts, err := resealAll(ctx, cfg, store)
				if err != nil {
					return err
				}
				if asJSON {
					out := map[string]int{}
					for _, c := range sealedColumns {
						out[c.column] = counts[c.column]
					}
					return printJSON(e.stdout, out)
				}
				total := 0
				for _, c := range sealedColumns {
					fmt.Fprintf(e.stdout, "%s: %d resealed\n", c.what, counts[c.column])
					total += counts[c.column]
				}
				fmt.Fprintf(e.stdout, "%d rows changed\n", total)
				return nil
			})
		},
	}
	reseal.Flags().BoolVar(&asJSON, "json", false, "print JSON: rows changed per column")
	cmd.AddCommand(reseal)
	return cmd
}

// resealAll re-seals every sealed column in one transaction, with the
// audit event, and returns the rows changed per column.
func resealAll(ctx context.Context, cfg *config.Config, store storage.Store) (map[string]int, error) {
	acc := newAccounts(cfg, store, slog.New(slog.DiscardHandler), nil)
	counts := map[string]int{}
	err := store.InTx(ctx, func(ctx context.Context) error {
		total := 0
		for _, c := range sealedColumns {
			s, err := secret.NewSealer([]byte(cfg.Secret), c.purpose, cfg.PreviousMasters()...)
			if err != nil {
				return err
			}
			n, err := store.Reseal(ctx, c.column, func(id string, sealed []byte) ([]byte, bool, error) {
				out, changed, err := s.Reseal(rand.Reader, id, sealed)
				if err != nil {
					return nil, false, fmt.Errorf("neither LATCHKEY_SECRET nor LATCHKEY_PREVIOUS_SECRETS opens it: %w", err)
				}
				return out, changed, nil
			})
			if err != nil {
				return err
			}
			counts[c.column] = n
			total += n
		}
		changes := map[string]any{"rows": total}
		for c, n := range counts {
			changes[c] = n
		}
		return acc.RecordAudit(ctx, "secrets.reseal", "", "", changes)
	})
	if err != nil {
		return nil, fmt.Errorf("reseal: %w", err)
	}
	return counts, nil
}
