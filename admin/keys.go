package admin

import (
	"net/http"
	"slices"
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
// Each new key is recorded in the audit log (keys.Manager.RotateAudited,
// the operation the CLI runs too).
func handleRotateKeys(d Deps) http.Handler {
	return withKeys(d, func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
			Now bool `json:"now"`
		}
		if err := decodeJSON(w, r, &in, true); err != nil {
			return err
		}
		ctx := r.Context()
		created, err := d.Keys.RotateAudited(ctx, d.Accounts, in.Now)
		if err != nil {
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

// handleRetireKey stops a key signing, recorded in the audit log
// (keys.Manager.RetireAudited, the operation the CLI runs too).
func handleRetireKey(d Deps) http.Handler {
	return withKeys(d, func(w http.ResponseWriter, r *http.Request) error {
		if err := d.Keys.RetireAudited(r.Context(), d.Accounts, pathVar(r, "kid")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}
