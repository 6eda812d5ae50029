package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/latchkey/latchkey/internal/accesslog"
	"github.com/latchkey/latchkey/internal/clientip"
	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
)

// Scopes of admin API tokens. ScopeAdmin grants every route.
const (
	ScopeAdmin      = "admin"
	ScopeUsersRead  = "admin:users.read"
	ScopeUsersWrite = "admin:users.write"
	ScopeUsersBasic = "admin:users.search.basic" // list/search: id and username only
	ScopeTiers      = "admin:tiers"
	ScopeClients    = "admin:clients"
	ScopeKeys       = "admin:keys"
	ScopeAudit      = "admin:audit"
	ScopeGroups     = "admin:groups"
)

const (
	authRealm       = "latchkey-admin"
	bearerPrefix    = "bearer " // compared ignoring case
	maxBearerToken  = 4096      // longer is refused without asking the checker
	wwwAuthenticate = "WWW-Authenticate"
)

// AllScopes lists every scope the admin API knows.
func AllScopes() []string {
	return []string{ScopeAdmin, ScopeUsersRead, ScopeUsersWrite, ScopeUsersBasic, ScopeTiers, ScopeClients, ScopeKeys, ScopeAudit, ScopeGroups}
}

// caller is who makes an admin request: a client, or a person with
// admin roles.
type caller struct {
	actor  accounts.Actor
	scopes map[string]bool
}

// has reports whether the caller holds scope (ScopeAdmin holds all).
func (c *caller) has(scope string) bool {
	return c != nil && (c.scopes[ScopeAdmin] || c.scopes[scope])
}

type callerKey struct{}

func callerFrom(ctx context.Context) *caller {
	c, _ := ctx.Value(callerKey{}).(*caller)
	return c
}

// requireScope authenticates the bearer token and lets the request through
// when the token holds one of scopes (or ScopeAdmin). The request context
// then carries the caller and, for the audit log, the accounts.Actor.
func requireScope(d Deps, scopes []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, found := bearerToken(r)
		if !found {
			p := problem("unauthorized", "send an admin access token: Authorization: Bearer <token>")
			p.header = http.Header{wwwAuthenticate: {`Bearer realm="` + authRealm + `"`}}
			writeProblem(w, p)
			return
		}
		var actor accounts.Actor
		var granted []string
		var err error = errTokenTooLong
		if len(token) <= maxBearerToken {
			actor, granted, err = d.Tokens.CheckAdminToken(r.Context(), token)
		}
		if errors.Is(err, storage.ErrUnavailable) {
			// Our outage, not a bad token: the caller should retry.
			writeProblem(w, toProblem(d.Logger, r, err))
			return
		}
		if err != nil || actor.ID == "" {
			p := problem("unauthorized", "the access token is invalid, expired or not an admin token")
			p.header = http.Header{wwwAuthenticate: {`Bearer realm="` + authRealm + `", error="invalid_token"`}}
			writeProblem(w, p)
			return
		}
		if actor.Type == storage.ActorClient {
			accesslog.SetClient(r.Context(), actor.ID)
		}
		c := &caller{actor: actor, scopes: make(map[string]bool, len(granted))}
		for _, s := range granted {
			c.scopes[s] = true
		}
		ok := false
		for _, s := range scopes {
			ok = ok || c.has(s)
		}
		if !ok {
			p := problemf("insufficient-scope", "this route needs scope %s (or %s)", strings.Join(scopes, " or "), ScopeAdmin)
			p.header = http.Header{wwwAuthenticate: {`Bearer realm="` + authRealm + `", error="insufficient_scope", scope="` +
				strings.Join(scopes, " ") + `"`}}
			writeProblem(w, p)
			return
		}
		ctx := context.WithValue(r.Context(), callerKey{}, c)
		actor.IP, actor.UserAgent = clientip.From(r), r.UserAgent()
		ctx = accounts.WithActor(ctx, actor)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

var errTokenTooLong = errors.New("token too long")

// bearerToken returns the token of an "Authorization: Bearer <token>"
// header (the scheme in any case); false when there is none.
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) < len(bearerPrefix) || !strings.EqualFold(h[:len(bearerPrefix)], bearerPrefix) {
		return "", false
	}
	token := strings.TrimSpace(h[len(bearerPrefix):])
	return token, token != ""
}

const metricsRealm = "latchkey-metrics"

// requireMetricsToken guards /metrics with a static bearer token for
// scrapers; an empty token leaves it open (the admin listener is private).
// The tokens are compared as SHA-256 digests in constant time, so neither
// the content nor the length of the token leaks through timing.
func requireMetricsToken(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := bearerToken(r)
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			p := problem("unauthorized", "send the metrics token: Authorization: Bearer <token>")
			challenge := `Bearer realm="` + metricsRealm + `"`
			if ok {
				challenge += `, error="invalid_token"`
			}
			p.header = http.Header{wwwAuthenticate: {challenge}}
			writeProblem(w, p)
			return
		}
		next.ServeHTTP(w, r)
	})
}
