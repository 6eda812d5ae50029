package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
)

// clientFieldNames maps the field names of the client rules' validation
// errors to the API's JSON field names.
var clientFieldNames = map[string]string{
	"grant_type":               "grant_types",
	"redirect_uri":             "redirect_uris",
	"post_logout_redirect_uri": "post_logout_redirect_uris",
	"scope":                    "scopes",
}

func clientErr(err error) error {
	var ve *accounts.ValidationError
	if errors.As(err, &ve) {
		if f, ok := clientFieldNames[ve.Field]; ok {
			return invalidField(f, ve.Message)
		}
	}
	return err
}

func handleListClients(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		cs, err := d.Accounts.ListClients(r.Context())
		if err != nil {
			return err
		}
		out := make([]clientView, 0, len(cs))
		for i := range cs {
			out = append(out, viewClient(&cs[i]))
		}
		writeJSON(w, http.StatusOK, map[string]any{"clients": out})
		return nil
	})
}

func handleCreateClient(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
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
			Claims                 map[string]string `json:"claims"`
			ClaimsScope            string            `json:"claims_scope"`
			storage.ClientMeta
		}
		if err := decodeJSON(w, r, &in, false); err != nil {
			return err
		}
		if err := guardAdminScopes(r.Context(), in.Scopes); err != nil {
			return err
		}
		c, sec, err := d.Accounts.CreateClient(r.Context(), accounts.ClientSpec{
			Name: in.Name, RedirectURIs: in.RedirectURIs, PostLogoutRedirectURIs: in.PostLogoutRedirectURIs,
			GrantTypes: in.GrantTypes, Scopes: in.Scopes, Audience: in.Audience, Public: in.Public, FirstParty: in.FirstParty,
			RequireMFA: in.RequireMFA, AccessTokenFormat: storage.AccessTokenFormat(in.AccessTokenFormat),
			Claims: in.Claims, ClaimsScope: in.ClaimsScope, Meta: in.ClientMeta,
		})
		if err != nil {
			return clientErr(err)
		}
		v := viewClient(c)
		v.ClientSecret = sec
		w.Header().Set("Location", location("/v1/clients", c.ID))
		writeJSON(w, http.StatusCreated, v)
		return nil
	})
}

func handleGetClient(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		c, err := d.Accounts.GetClient(r.Context(), pathVar(r, "id"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, viewClient(c))
		return nil
	})
}

var (
	clientPatchable = append([]string{"name", "redirect_uris", "post_logout_redirect_uris", "grant_types", "scopes", "audience", "first_party",
		"require_mfa", "access_token_format", "access_token_ttl", "refresh_token_ttl", "id_token_ttl", "auth_code_ttl", "claims", "claims_scope"},
		clientMetaFields()...)
	clientProtected = map[string]string{
		"client_id":      "cannot be changed",
		"id":             "cannot be changed",
		"public":         "cannot be changed (it would turn the secret on or off); register a new client instead",
		"client_secret":  "cannot be set; use POST /v1/clients/{id}/rotate-secret",
		"secret_hash":    "cannot be set; use POST /v1/clients/{id}/rotate-secret",
		"response_types": "follows from grant_types",
		"created_at":     "cannot be changed",
	}
)

func handlePatchClient(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		p, err := decodePatch(w, r, clientPatchable, clientProtected)
		if err != nil {
			return err
		}
		var up accounts.ClientUpdate
		if up.Name, err = p.str("name", false); err != nil {
			return err
		}
		for name, dst := range map[string]**[]string{
			"redirect_uris": &up.RedirectURIs, "post_logout_redirect_uris": &up.PostLogoutRedirectURIs,
			"grant_types": &up.GrantTypes, "scopes": &up.Scopes, "audience": &up.Audience,
		} {
			if *dst, err = p.strings(name); err != nil {
				return err
			}
		}
		if up.FirstParty, err = p.boolean("first_party"); err != nil {
			return err
		}
		if up.RequireMFA, err = p.boolean("require_mfa"); err != nil {
			return err
		}
		if up.Claims, err = p.stringMap("claims"); err != nil {
			return err
		}
		if up.ClaimsScope, err = p.str("claims_scope", true); err != nil {
			return err
		}
		format, err := p.str("access_token_format", true)
		if err != nil {
			return err
		}
		if format != nil {
			f := storage.AccessTokenFormat(*format)
			up.AccessTokenFormat = &f
		}
		if up.AccessTokenTTL, err = p.duration("access_token_ttl"); err != nil {
			return err
		}
		if up.RefreshTokenTTL, err = p.duration("refresh_token_ttl"); err != nil {
			return err
		}
		if up.IDTokenTTL, err = p.duration("id_token_ttl"); err != nil {
			return err
		}
		if up.AuthCodeTTL, err = p.duration("auth_code_ttl"); err != nil {
			return err
		}
		if err := guardAdminClient(r.Context(), d, pathVar(r, "id")); err != nil {
			return err
		}
		if up.Meta, err = patchClientMeta(r.Context(), d, pathVar(r, "id"), p); err != nil {
			return err
		}
		if up.Scopes != nil {
			if err := guardAdminScopes(r.Context(), *up.Scopes); err != nil {
				return err
			}
		}
		c, err := d.Accounts.UpdateClient(r.Context(), pathVar(r, "id"), up)
		if err != nil {
			return clientErr(err)
		}
		writeJSON(w, http.StatusOK, viewClient(c))
		return nil
	})
}

func handleDeleteClient(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		if err := guardAdminClient(r.Context(), d, pathVar(r, "id")); err != nil {
			return err
		}
		if err := d.Accounts.DeleteClient(r.Context(), pathVar(r, "id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

func handleRotateClientSecret(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		if err := guardAdminClient(r.Context(), d, pathVar(r, "id")); err != nil {
			return err
		}
		c, sec, err := d.Accounts.RotateClientSecret(r.Context(), pathVar(r, "id"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]string{"client_id": c.ID, "client_secret": sec})
		return nil
	})
}

// guardAdminScopes keeps admin:clients from being a way to become admin:
// only a caller holding the admin scope may give a client any admin scope.
func guardAdminScopes(ctx context.Context, scopes []string) error {
	c := callerFrom(ctx)
	if c != nil && c.scopes[ScopeAdmin] {
		return nil
	}
	for _, s := range scopes {
		if slices.Contains(AllScopes(), s) {
			return problemf("insufficient-scope", "only a caller with scope %s may give a client the scope %s", ScopeAdmin, s)
		}
	}
	return nil
}

// guardAdminClient: changing, rotating or deleting a client that holds an
// admin scope needs the admin scope too (rotating the bootstrap admin's
// secret would hand over its powers).
func guardAdminClient(ctx context.Context, d Deps, id string) error {
	cl, err := d.Accounts.GetClient(ctx, id)
	if err != nil {
		return err
	}
	if err := guardAdminScopes(ctx, cl.Scopes); err != nil {
		return problemf("insufficient-scope", "client %s holds admin scopes; changing it needs scope %s", id, ScopeAdmin)
	}
	return nil
}

// clientMetaFields are the JSON names of storage.ClientMeta: the
// registration metadata the API shows and changes under OIDC Dynamic
// Client Registration names.
func clientMetaFields() []string {
	t := reflect.TypeOf(storage.ClientMeta{})
	out := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		out = append(out, name)
	}
	return out
}

// patchClientMeta merges the metadata fields of a PATCH body onto the
// client's current metadata; nil when the body changes none. null clears
// a field.
func patchClientMeta(ctx context.Context, d Deps, id string, p patch) (*storage.ClientMeta, error) {
	sub := map[string]json.RawMessage{}
	for _, f := range clientMetaFields() {
		if raw, ok := p[f]; ok {
			sub[f] = raw
		}
	}
	if len(sub) == 0 {
		return nil, nil
	}
	c, err := d.Accounts.GetClient(ctx, id)
	if err != nil {
		return nil, err
	}
	// Each field is decoded on its own so an error names it, and null
	// resets it (json leaves a field untouched on null).
	m := c.Meta
	v := reflect.ValueOf(&m).Elem()
	for i, name := range clientMetaFields() {
		raw, ok := sub[name]
		if !ok {
			continue
		}
		f := v.Field(i)
		f.SetZero()
		if isNull(raw) {
			continue
		}
		if err := json.Unmarshal(raw, f.Addr().Interface()); err != nil {
			msg := "must be " + jsonKind(f.Kind().String())
			if f.Type() == reflect.TypeOf(json.RawMessage(nil)) {
				msg = "must be a JSON object"
			}
			return nil, problem("invalid-json", name+": "+msg, FieldError{Field: name, Message: msg})
		}
	}
	return &m, nil
}
