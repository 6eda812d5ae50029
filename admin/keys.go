package admin

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/provider/keys"
	"github.com/latchkey/latchkey/storage"
)

// withKeys answers 503 when the server was built without a key manager.
func withKeys(d Deps, fn func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		if d.Keys == nil {
			return problem("unavailable", "signing key management is not configured on this server")
		}
		return fn(w, r)
	})
}

func handleListKeys(d Deps) http.Handler {
	return withKeys(d, func(w http.ResponseWriter, r *http.Request) error {
		ks, err := d.Keys.List(r.Context())
		if err != nil {
			return err
		}
		out := make([]keyView, 0, len(ks))
		for _, k := range ks {
			out = append(out, viewKey(k))
		}
		writeJSON(w, http.StatusOK, map[string]any{"keys": out})
		return nil
	})
}

// handleRotateKeys adds a key per algorithm: published now and signing
// after the publish delay, or at once with {"now": true} (a leaked key).
// Each new key is recorded in the audit log.
func handleRotateKeys(d Deps) http.Handler {
	return withKeys(d, func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
			Now bool `json:"now"`
		}
		if err := decodeJSON(w, r, &in, true); err != nil {
			return err
		}
		ctx := r.Context()
		rotate := d.Keys.Rotate
		if in.Now {
			rotate = d.Keys.RotateNow
		}
		// The new keys and their audit events commit together; after a
		// rollback the manager reloads what the database really holds.
		var created []storage.SigningKey
		err := d.Accounts.InTx(ctx, func(ctx context.Context) error {
			var err error
			if created, err = rotate(ctx); err != nil {
				return err
			}
			for _, k := range created {
				if err := d.Accounts.RecordAudit(ctx, accounts.AuditKeyRotate, k.ID, "", map[string]any{
					"algorithm": k.Algorithm, "activates_at": k.ActivatesAt.UTC(), "immediate": in.Now,
				}); err != nil {
					return fmt.Errorf("recording key rotation: %w", err)
				}
			}
			return nil
		})
		if err != nil {
			if rerr := d.Keys.Refresh(context.WithoutCancel(ctx)); rerr != nil {
				d.Logger.Error("reloading signing keys after a failed rotation", "err", rerr)
			}
			return err
		}
		ids := make([]string, 0, len(created))
		for _, k := range created {
			ids = append(ids, k.ID)
		}
		all, err := d.Keys.List(ctx)
		if err != nil {
			return err
		}
		out := make([]keyView, 0, len(created))
		for _, k := range all {
			if slices.Contains(ids, k.ID) {
				out = append(out, viewKey(k))
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"keys": out})
		return nil
	})
}

func handleRetireKey(d Deps) http.Handler {
	return withKeys(d, func(w http.ResponseWriter, r *http.Request) error {
		kid := pathVar(r, "kid")
		ctx := r.Context()
		ks, err := d.Keys.List(ctx)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(ks, func(k keys.KeyInfo) bool { return k.ID == kid })
		if i < 0 {
			return fmt.Errorf("key %s: %w", kid, storage.ErrNotFound)
		}
		err = d.Accounts.InTx(ctx, func(ctx context.Context) error {
			if err := d.Keys.Retire(ctx, kid); err != nil {
				return err
			}
			// Retiring a key that no longer signs changes nothing: no event.
			if st := ks[i].State; st != keys.StateRetiring && st != keys.StateExpired {
				if err := d.Accounts.RecordAudit(ctx, accounts.AuditKeyRetire, kid, "",
					map[string]any{"algorithm": ks[i].Algorithm, "previous_state": st}); err != nil {
					return fmt.Errorf("recording key retirement: %w", err)
				}
			}
			return nil
		})
		if err != nil {
			if rerr := d.Keys.Refresh(context.WithoutCancel(ctx)); rerr != nil {
				d.Logger.Error("reloading signing keys after a failed retirement", "err", rerr)
			}
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}
