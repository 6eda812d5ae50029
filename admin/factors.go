package admin

import (
	"net/http"
	"time"

	"github.com/latchkey/latchkey/storage"
)

// A user's second factors: list them, remove one, or reset them all (a
// person who lost their phone). Secrets never leave the server.

type factorView struct {
	ID         string     `json:"id"`
	Type       string     `json:"type"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

func viewFactors(fs []storage.Factor) []factorView {
	out := make([]factorView, 0, len(fs))
	for _, f := range fs {
		out = append(out, factorView{ID: f.ID, Type: string(f.Type), Name: f.Name, CreatedAt: utc(f.CreatedAt),
			LastUsedAt: utcPtr(f.LastUsedAt)})
	}
	return out
}

func handleListFactors(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		id := pathVar(r, "id")
		if _, err := d.Accounts.GetUserAny(r.Context(), id); err != nil {
			return err
		}
		fs, left, err := d.Accounts.ListFactors(r.Context(), id)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"factors": viewFactors(fs), "recovery_codes_left": left})
		return nil
	})
}

// handleResetFactors removes every factor and recovery code, signs the
// user out everywhere and revokes their tokens (one audited change).
func handleResetFactors(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		var in reasonBody
		if err := decodeJSON(w, r, &in, true); err != nil {
			return err
		}
		n, err := d.Accounts.ResetFactors(r.Context(), pathVar(r, "id"), in.get())
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"removed": n})
		return nil
	})
}

func handleDeleteFactor(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		var in reasonBody
		if err := decodeJSON(w, r, &in, true); err != nil {
			return err
		}
		if err := d.Accounts.AdminDeleteFactor(r.Context(), pathVar(r, "id"), pathVar(r, "factor_id"), in.get()); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}
