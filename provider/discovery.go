package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	josev3 "github.com/go-jose/go-jose/v3"
	"github.com/latchkey/latchkey/provider/accounts"
)

// discoveryDoc is built once: the document only changes with configuration.
func (p *Provider) discoveryDoc() ([]byte, string) {
	p.discoveryOnce.Do(func() {
		iss := p.cfg.Issuer
		doc := map[string]any{
			"issuer":                                        iss,
			"authorization_endpoint":                        iss + pathAuthorize,
			"token_endpoint":                                iss + pathToken,
			"userinfo_endpoint":                             iss + pathUserinfo,
			"jwks_uri":                                      iss + pathJWKS,
			"introspection_endpoint":                        iss + pathIntrospect,
			"revocation_endpoint":                           iss + pathRevoke,
			"end_session_endpoint":                          iss + pathEndSession,
			"pushed_authorization_request_endpoint":         iss + pathPAR,
			"scopes_supported":                              append(append([]string{}, claimScopes...), "offline_access", ScopeAccountRead, ScopeAccountWrite),
			"response_types_supported":                      []string{"code"},
			"response_modes_supported":                      []string{"query", "form_post"},
			"grant_types_supported":                         accounts.GrantTypes(),
			"subject_types_supported":                       []string{"public"},
			"id_token_signing_alg_values_supported":         p.signingAlgs(),
			"token_endpoint_auth_methods_supported":         []string{"client_secret_basic", "client_secret_post", "none"},
			"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
			"revocation_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post", "none"},
			"code_challenge_methods_supported":              []string{"S256"},
			// RFC 9207: every authorization response, success or error,
			// carries iss.
			"authorization_response_iss_parameter_supported": true,
			"claims_supported":                      releasedClaims,
			"prompt_values_supported":               []string{"none", "login", "consent"},
			"acr_values_supported":                  []string{ACRPassword, ACRFederated, ACRMFA},
			"claims_parameter_supported":            false,
			"request_parameter_supported":           false,
			"request_uri_parameter_supported":       false,
			"require_pushed_authorization_requests": false,
			"frontchannel_logout_supported":         false,
			"backchannel_logout_supported":          false,
		}
		b, err := json.Marshal(doc)
		if err != nil {
			panic(fmt.Sprintf("discovery: %v", err)) // static data
		}
		sum := sha256.Sum256(b)
		p.discovery, p.discoveryETag = b, `"`+hex.EncodeToString(sum[:12])+`"`
	})
	return p.discovery, p.discoveryETag
}

// signingAlgs are the algorithms ID tokens and JWT access tokens are
// signed with: the algorithm of the key fosite is handed (fosite signs
// with the key's own "alg"). The ES256 keys in the JWKS sign nothing yet
// (per-client algorithms are future work), so discovery must not name
// ES256: a client that picked it would reject every token.
func (p *Provider) signingAlgs() []string {
	k, err := p.keys.GetPrivateKey(context.Background())
	if jwk, ok := k.(*josev3.JSONWebKey); err == nil && ok && jwk.Algorithm != "" {
		return []string{jwk.Algorithm}
	}
	return []string{"RS256"} // what provider/keys hands fosite
}

// handleDiscovery serves /.well-known/openid-configuration from
// precomputed bytes.
func (p *Provider) handleDiscovery() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, etag := p.discoveryDoc()
		serveCachedJSON(w, r, body, etag, 3600)
	})
}

// handleJWKS serves the JWKS that provider/keys precomputes on every key
// change; nothing is parsed or queried per request.
func (p *Provider) handleJWKS() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, etag := p.keys.JWKS()
		serveCachedJSON(w, r, body, etag, int(p.keys.MaxAge().Seconds()))
	})
}

func serveCachedJSON(w http.ResponseWriter, r *http.Request, body []byte, etag string, maxAge int) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(maxAge))
	h.Set("ETag", etag)
	h.Set("Access-Control-Allow-Origin", "*")
	if match := r.Header.Get("If-None-Match"); match != "" && match == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}
