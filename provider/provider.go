// Package provider is Latchkey's OAuth 2.0 / OpenID Connect authorization
// server: fosite composed with exactly the handlers Latchkey supports, the
// protocol endpoints, and the hand-off of pending authorizations to the
// login UI.
package provider

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	josev4 "github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
)

// Keys is what the provider needs from provider/keys.
type Keys interface {
	// GetPrivateKey returns the current RS256 signer in the go-jose v3 form
	// fosite v0.49 accepts.
	GetPrivateKey(ctx context.Context) (interface{}, error)
	// JWKS returns the precomputed JWKS document and its ETag.
	JWKS() (body []byte, etag string)
	MaxAge() time.Duration
	// PublicKeys returns every published verification key.
	PublicKeys() josev4.JSONWebKeySet
}

// ErrorPage renders a friendly HTML error page. The login UI provides it;
// the provider uses it where the browser must not be redirected (an
// unregistered redirect URI, an unknown client).
//
// technical, when given, is the developer's detail (an OAuth error code
// and its description): the page shows it folded away behind a
// "Technical details" disclosure, under the sentence for people.
type ErrorPage func(w http.ResponseWriter, r *http.Request, status int, title, detail string, technical ...string)

// Config holds the provider settings.
type Config struct {
	Issuer string // absolute URL, no trailing slash
	Secret []byte // LATCHKEY_SECRET; HMAC token keys derive from it
	// PreviousSecrets (LATCHKEY_PREVIOUS_SECRETS) still verify tokens and
	// form tokens made with them; nothing new is made with them.
	PreviousSecrets [][]byte
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	IDTokenTTL      time.Duration
	AuthCodeTTL     time.Duration
	LoginTTL        time.Duration // how long a pending authorization waits
}

// Deps are the provider's collaborators.
type Deps struct {
	Store     storage.Store
	Accounts  *accounts.Service
	Keys      Keys
	ErrorPage ErrorPage
	Logger    *slog.Logger
	// Metrics counts issued tokens; nil counts nothing.
	Metrics interface{ TokenIssued(grantType string) }
	// Factors tells the sign-in pipeline whether a person has a second
	// factor (provider/accounts); nil: nobody has one.
	Factors interface {
		MFAEnabled(ctx context.Context, userID string) (bool, error)
	}
	// Recheck limits password checks through the account API per account
	// (the sign-in limit); nil limits nothing.
	Recheck interface {
		Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error)
	}
}

// Provider serves the protocol endpoints.
type Provider struct {
	cfg       Config
	store     storage.Store
	accounts  *accounts.Service
	keys      Keys
	oauth     fosite.OAuth2Provider
	fcfg      *fosite.Config
	errorPage ErrorPage
	log       *slog.Logger
	secure    bool // issuer is https: cookies get Secure
	// cookieKeys make form tokens (the first) and check them (any: the
	// current secret's and the previous ones').
	cookieKeys [][]byte
	// The flow cookies' names (__Host- prefixed on https).
	flowName, prevFlowName string
	metrics                interface{ TokenIssued(grantType string) }
	factors                interface {
		MFAEnabled(ctx context.Context, userID string) (bool, error)
	}
	// recheckLimit is the per-account limit on passwords checked through
	// the account API (see recheck); nil limits nothing.
	recheckLimit interface {
		Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error)
	}

	discoveryOnce sync.Once
	discovery     []byte
	discoveryETag string
}

// New composes fosite and returns the provider.
func New(cfg Config, deps Deps) (*Provider, error) {
	u, err := url.Parse(cfg.Issuer)
	if err != nil || !u.IsAbs() {
		return nil, fmt.Errorf("provider: issuer %q is not an absolute URL", cfg.Issuer)
	}
	if err := secret.CheckMaster(cfg.Secret); err != nil {
		return nil, fmt.Errorf("provider: %w", err)
	}
	cfg.Issuer = strings.TrimSuffix(cfg.Issuer, "/")
	setDefault(&cfg.AccessTokenTTL, time.Hour)
	setDefault(&cfg.RefreshTokenTTL, 30*24*time.Hour)
	setDefault(&cfg.IDTokenTTL, time.Hour)
	setDefault(&cfg.AuthCodeTTL, 10*time.Minute)
	setDefault(&cfg.LoginTTL, 30*time.Minute)
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.ErrorPage == nil {
		deps.ErrorPage = plainErrorPage
	}
	p := &Provider{
		cfg:          cfg,
		store:        deps.Store,
		accounts:     deps.Accounts,
		keys:         deps.Keys,
		errorPage:    deps.ErrorPage,
		log:          deps.Logger,
		secure:       u.Scheme == "https",
		cookieKeys:   secret.DeriveAll(cfg.Secret, secret.PurposeCookies, cfg.PreviousSecrets...),
		metrics:      deps.Metrics,
		recheckLimit: deps.Recheck,
		factors:      deps.Factors,
	}
	p.flowName, p.prevFlowName = flowCookieNames(p.secure)
	p.fcfg = &fosite.Config{
		AccessTokenLifespan:            cfg.AccessTokenTTL,
		RefreshTokenLifespan:           cfg.RefreshTokenTTL,
		IDTokenLifespan:                cfg.IDTokenTTL,
		AuthorizeCodeLifespan:          cfg.AuthCodeTTL,
		PushedAuthorizeContextLifespan: cfg.AuthCodeTTL,
		IDTokenIssuer:                  cfg.Issuer,
		AccessTokenIssuer:              cfg.Issuer,
		TokenURL:                       cfg.Issuer + pathToken,
		GlobalSecret:                   secret.Derive(cfg.Secret, secret.PurposeHMACTokens),
		// Tokens and codes made under a previous secret stay valid until
		// they expire.
		RotatedGlobalSecrets: secret.DeriveAll(cfg.Secret, secret.PurposeHMACTokens, cfg.PreviousSecrets...)[1:],
		ScopeStrategy:        fosite.ExactScopeStrategy,
		// Exact matches and invalid_target (resources.go decides the
		// audience; this is the rule for fosite's own checks).
		AudienceMatchingStrategy:        audienceStrategy,
		EnforcePKCEForPublicClients:     true,
		EnablePKCEPlainChallengeMethod:  false,
		ClientSecretsHasher:             accounts.SecretHasher{},
		SendDebugMessagesToClients:      false,
		MinParameterEntropy:             fosite.MinParameterEntropy,
		RefreshTokenScopes:              []string{"offline_access", "offline"},
		PushedAuthorizeRequestURIPrefix: "urn:ietf:params:oauth:request_uri:",
		OmitRedirectScopeParam:          true,
		JWTScopeClaimKey:                jwt.JWTScopeFieldString,
		// fosite's default form_post page submits from an inline onload
		// handler, which no strict CSP allows.
		FormPostHTMLTemplate: formPostTemplate,
	}
	keyGetter := deps.Keys.GetPrivateKey
	hmacStrategy := compose.NewOAuth2HMACStrategy(p.fcfg)
	strategy := &compose.CommonStrategy{
		CoreStrategy: &accessTokenStrategy{
			HMACSHAStrategy: hmacStrategy,
			jwt:             compose.NewOAuth2JWTStrategy(keyGetter, hmacStrategy, p.fcfg),
			keys:            deps.Keys,
		},
		OpenIDConnectTokenStrategy: compose.NewOpenIDConnectStrategy(keyGetter, p.fcfg),
		Signer:                     &jwt.DefaultSigner{GetPrivateKey: keyGetter},
	}
	// The handlers Latchkey supports, wired one by one. No implicit or
	// hybrid flow, no password grant (compose.ComposeAllEnabled has them).
	p.oauth = compose.Compose(p.fcfg, deps.Store, strategy,
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OpenIDConnectExplicitFactory,
		compose.OpenIDConnectRefreshFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2TokenRevocationFactory,
		compose.OAuth2PKCEFactory,
		compose.PushedAuthorizeHandlerFactory,
	)
	return p, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

func plainErrorPage(w http.ResponseWriter, _ *http.Request, status int, title, detail string, _ ...string) {
	http.Error(w, title+": "+detail, status)
}

// client returns the Latchkey record of a fosite client.
func (p *Provider) client(ctx context.Context, id string) (*storage.Client, error) {
	cl, err := p.store.GetClient(ctx, id)
	if err != nil {
		return nil, err
	}
	c, ok := cl.(*storage.Client)
	if !ok {
		return nil, fmt.Errorf("provider: client %s has type %T", id, cl)
	}
	return c, nil
}
