package admin

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
)

func handleListTiers(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		ts, err := d.Accounts.ListTiers(r.Context())
		if err != nil {
			return err
		}
		out := make([]tierView, 0, len(ts))
		for i := range ts {
			out = append(out, viewTier(&ts[i]))
		}
		writeJSON(w, http.StatusOK, map[string]any{"tiers": out})
		return nil
	})
}

func handleCreateTier(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
			Name        *string `json:"name"`
			Description *string `json:"description"`
			IsDefault   *bool   `json:"is_default"`
			RequireMFA  *bool   `json:"require_mfa"`
		}
		if err := decodeJSON(w, r, &in, false); err != nil {
			return err
		}
		t, err := d.Accounts.CreateTier(r.Context(), accounts.TierSpec{Name: in.Name, Description: in.Description, IsDefault: in.IsDefault,
			RequireMFA: in.RequireMFA})
		if err != nil {
			return err
		}
		w.Header().Set("Location", location("/v1/tiers", t.ID))
		writeJSON(w, http.StatusCreated, viewTier(t))
		return nil
	})
}

func handleGetTier(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		t, err := d.Accounts.GetTier(r.Context(), pathVar(r, "id"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, viewTier(t))
		return nil
	})
}

var tierProtected = map[string]string{
	"id":          "cannot be changed",
	"created_at":  "cannot be changed",
	"updated_at":  "is set by the server",
	"rate_limits": "cannot be changed with PATCH; use PUT /v1/tiers/{id}/rate-limits",
}

func handlePatchTier(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		p, err := decodePatch(w, r, []string{"name", "description", "is_default", "require_mfa"}, tierProtected)
		if err != nil {
			return err
		}
		var spec accounts.TierSpec
		if spec.Name, err = p.str("name", false); err != nil {
			return err
		}
		if spec.Description, err = p.str("description", true); err != nil {
			return err
		}
		if spec.IsDefault, err = p.boolean("is_default"); err != nil {
			return err
		}
		if spec.RequireMFA, err = p.boolean("require_mfa"); err != nil {
			return err
		}
		t, err := d.Accounts.UpdateTier(r.Context(), pathVar(r, "id"), spec)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, viewTier(t))
		return nil
	})
}

func handleDeleteTier(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		id := pathVar(r, "id")
		t, err := d.Accounts.GetTier(r.Context(), id)
		if err != nil {
			return err
		}
		if t.IsDefault {
			return problem("conflict", "the default tier cannot be deleted; make another tier the default first")
		}
		err = d.Accounts.DeleteTier(r.Context(), id)
		if errors.Is(err, storage.ErrConflict) {
			return problem("conflict", "users are on this tier; move them to another tier first")
		}
		if err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

func handleGetTierRateLimits(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		ls, err := d.Accounts.TierRateLimits(r.Context(), pathVar(r, "id"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"rate_limits": viewRateLimits(ls)})
		return nil
	})
}

func handlePutTierRateLimits(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
			RateLimits *[]struct {
				Match  string `json:"match"`
				Limit  int    `json:"limit"`
				Period string `json:"period"`
			} `json:"rate_limits"`
		}
		if err := decodeJSON(w, r, &in, false); err != nil {
			return err
		}
		if in.RateLimits == nil {
			return invalidField("rate_limits", "is required (an empty list removes every limit)")
		}
		limits := make([]storage.RateLimit, 0, len(*in.RateLimits))
		for i, l := range *in.RateLimits {
			period, err := time.ParseDuration(l.Period)
			if err != nil {
				return invalidField(fmt.Sprintf("rate_limits[%d].period", i), "must be a duration such as \"1m\" or \"24h\"")
			}
			limits = append(limits, storage.RateLimit{Match: l.Match, Limit: l.Limit, Period: period})
		}
		id := pathVar(r, "id")
		if err := d.Accounts.SetTierRateLimits(r.Context(), id, limits); err != nil {
			return err
		}
		ls, err := d.Accounts.TierRateLimits(r.Context(), id)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"rate_limits": viewRateLimits(ls)})
		return nil
	})
}
