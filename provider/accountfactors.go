package provider

import (
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
)

// The account API's second factors (pinned shapes: other software calls
// them). Enrolment is two calls: POST …/factors/totp returns the secret,
// POST …/factors/totp/{id}/confirm proves the app has it.

type factorJSON struct {
	ID         string     `json:"id"`
	Type       string     `json:"type"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

// factorViews are the factors as the account and admin APIs show them.
func factorViews(fs []storage.Factor) []factorJSON {
	out := make([]factorJSON, 0, len(fs))
	for _, f := range fs {
		v := factorJSON{ID: f.ID, Type: string(f.Type), Name: f.Name, CreatedAt: f.CreatedAt.UTC()}
		if f.LastUsedAt != nil {
			t := f.LastUsedAt.UTC()
			v.LastUsedAt = &t
		}
		out = append(out, v)
	}
	return out
}

func (p *Provider) handleAccountFactors() http.Handler {
	return p.withAccount(ScopeAccountRead, func(w http.ResponseWriter, r *http.Request, c accountCaller) {
		fs, left, err := p.accounts.ListFactors(r.Context(), c.user.ID)
		if err != nil {
			p.apiFail(w, err)
			return
		}
		writeAPIJSON(w, http.StatusOK, map[string]any{"factors": factorViews(fs), "recovery_codes_left": left})
	})
}

// proofBody is the proof a change to the factors needs: the current
// password, or a current code.
type proofBody struct {
	CurrentPassword string `json:"current_password"`
	Code            string `json:"code"`
}

// decodeProof reads an optional proof body (an empty body is no proof)
// and applies the password-recheck limit when a password is given.
func (p *Provider) decodeProof(w http.ResponseWriter, r *http.Request, c accountCaller) (accounts.FactorProof, bool) {
	var body proofBody
	if r.ContentLength != 0 {
		if err := decodeStrict(w, r, &body); err != nil {
			writeBodyError(w, err)
			return accounts.FactorProof{}, false
		}
	}
	if body.CurrentPassword != "" || body.Code != "" {
		if err := p.recheck(r.Context(), c.user.ID)(); err != nil {
			p.apiFail(w, err)
			return accounts.FactorProof{}, false
		}
	}
	return accounts.FactorProof{CurrentPassword: body.CurrentPassword, Code: body.Code}, true
}

func (p *Provider) handleAccountTOTPEnrol() http.Handler {
	return p.withAccount(ScopeAccountWrite, func(w http.ResponseWriter, r *http.Request, c accountCaller) {
		proof, ok := p.decodeProof(w, r, c)
		if !ok {
			return
		}
		en, err := p.accounts.EnrolTOTP(r.Context(), c.user.ID, proof.CurrentPassword)
		if err != nil {
			p.apiFail(w, err)
			return
		}
		writeAPIJSON(w, http.StatusCreated, map[string]string{"id": en.FactorID, "secret": en.Secret, "otpauth_uri": en.OTPAuthURI})
	})
}

func (p *Provider) handleAccountTOTPConfirm() http.Handler {
	return p.withAccount(ScopeAccountWrite, func(w http.ResponseWriter, r *http.Request, c accountCaller) {
		var body struct {
			Code string `json:"code"`
		}
		if err := decodeStrict(w, r, &body); err != nil {
			writeBodyError(w, err)
			return
		}
		if err := p.recheck(r.Context(), c.user.ID)(); err != nil {
			p.apiFail(w, err)
			return
		}
		codes, err := p.accounts.ConfirmTOTP(r.Context(), c.user.ID, mux.Vars(r)["id"], body.Code)
		if err != nil {
			p.apiFail(w, err)
			return
		}
		out := map[string]any{}
		if codes != nil {
			out["recovery_codes"] = codes
		}
		writeAPIJSON(w, http.StatusOK, out)
	})
}

func (p *Provider) handleAccountFactorDelete() http.Handler {
	return p.withAccount(ScopeAccountWrite, func(w http.ResponseWriter, r *http.Request, c accountCaller) {
		proof, ok := p.decodeProof(w, r, c)
		if !ok {
			return
		}
		err := p.accounts.DeleteFactor(r.Context(), c.user.ID, mux.Vars(r)["id"], proof)
		if errors.Is(err, storage.ErrNotFound) {
			writeAPIError(w, http.StatusNotFound, "not_found", "No such factor.", nil)
			return
		}
		if err != nil {
			p.apiFail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func (p *Provider) handleAccountRecoveryCodes() http.Handler {
	return p.withAccount(ScopeAccountWrite, func(w http.ResponseWriter, r *http.Request, c accountCaller) {
		proof, ok := p.decodeProof(w, r, c)
		if !ok {
			return
		}
		codes, err := p.accounts.RegenerateRecoveryCodes(r.Context(), c.user.ID, proof)
		if err != nil {
			p.apiFail(w, err)
			return
		}
		writeAPIJSON(w, http.StatusOK, map[string]any{"recovery_codes": codes})
	})
}
