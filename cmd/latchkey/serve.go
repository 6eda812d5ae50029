package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"
	"go.opentelemetry.io/otel/trace"

	"github.com/latchkey/latchkey/admin"
	"github.com/latchkey/latchkey/internal/accesslog"
	"github.com/latchkey/latchkey/internal/clientip"
	"github.com/latchkey/latchkey/internal/config"
	"github.com/latchkey/latchkey/internal/httpx"
	"github.com/latchkey/latchkey/internal/metrics"
	"github.com/latchkey/latchkey/internal/ratelimit"
	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/internal/tracing"
	loginui "github.com/latchkey/latchkey/login-ui"
	fedui "github.com/latchkey/latchkey/login-ui/federation"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/provider/federation"
	"github.com/latchkey/latchkey/provider/keys"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/sqlstore"
)

// app is one running Latchkey: the wired components behind both listeners.
type app struct {
	cfg      *config.Config
	log      *slog.Logger
	store    storage.Store
	keys     *keys.Manager
	accounts *accounts.Service
	provider *provider.Provider
	mail     *mailer
	public   http.Handler
	admin    http.Handler
	tracing  *tracing.Tracing
	// draining is set when a graceful stop begins: /readyz answers 503.
	draining atomic.Bool
	// upstreams are the upstream identity providers that opened; close
	// them with closeUpstreams.
	upstreams []*federation.OIDC
}

// closeUpstreams releases the upstream connectors.
func (a *app) closeUpstreams() {
	for _, c := range a.upstreams {
		_ = c.Close()
	}
}

// newApp opens the store (migrating it unless disabled), loads or creates
// the signing keys and wires every component. The caller closes app.store.
func newApp(ctx context.Context, cfg *config.Config, log *slog.Logger) (*app, error) {
	tr, err := tracing.Setup(ctx, tracing.Options{Exporter: cfg.OTelExporter, Endpoint: cfg.OTelEndpoint,
		SampleRatio: float64(cfg.OTelSamplePercent) / 100, Service: "latchkey", Version: version})
	if err != nil {
		return nil, err
	}
	// Pushed authorization requests come back as the provider's session
	// type; clients are cached briefly (see sqlstore.WithClientCacheTTL).
	storeOpts := []sqlstore.Option{
		sqlstore.WithSessionFactory(func() fosite.Session { return provider.NewSession() }),
		sqlstore.WithClientCacheTTL(5 * time.Second)}
	if tr.Enabled {
		storeOpts = append(storeOpts, sqlstore.WithTracer(tr.Tracer("latchkey/storage")))
	}
	store, err := openStore(ctx, cfg, storeOpts...)
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, log: log, store: store, tracing: tr}
	ok := false
	defer func() {
		if !ok {
			a.closeUpstreams()
			_ = store.Close()
		}
	}()

	a.keys, err = newKeyManager(cfg, store, log)
	if err != nil {
		return nil, err
	}
	if err := a.keys.Init(ctx); err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	m := metrics.New()
	mailSealer, err := secret.NewSealer([]byte(cfg.Secret), secret.PurposeMailOutbox, cfg.PreviousMasters()...)
	if err != nil {
		return nil, err
	}
	a.mail, err = newMailer(cfg, store, mailSealer, m, tr, log)
	if err != nil {
		return nil, err
	}
	registerStoreMetrics(m, store)
	m.GaugeFunc("latchkey_signing_key_age_seconds", "How long the oldest signing key in use has been active.",
		func() float64 { return a.keys.ActiveKeyAge().Seconds() })
	var hashTracer trace.Tracer
	if tr.Enabled {
		hashTracer = tr.Tracer("latchkey/accounts")
	}
	a.accounts = newAccountsWith(cfg, store, log, a.mail, hashTracer)

	pages, err := loginui.NewPages(loginui.Brand{Name: cfg.BrandName, LogoURL: cfg.BrandLogoURL,
		PrimaryColor: cfg.BrandColor, SupportEmail: cfg.SupportEmail}, log)
	if err != nil {
		return nil, fmt.Errorf("login pages: %w", err)
	}
	uiCfg, err := loginUIConfig(cfg, store, m)
	if err != nil {
		return nil, err
	}
	uiCfg.Metrics = m
	a.provider, err = provider.New(provider.Config{
		Issuer:          cfg.Issuer,
		Secret:          []byte(cfg.Secret),
		PreviousSecrets: cfg.PreviousMasters(),
		AccessTokenTTL:  cfg.AccessTokenTTL,
		RefreshTokenTTL: cfg.RefreshTokenTTL,
		IDTokenTTL:      cfg.IDTokenTTL,
		AuthCodeTTL:     cfg.AuthCodeTTL,
		LoginTTL:        cfg.LoginTTL,
	}, provider.Deps{
		Store:     store,
		Accounts:  a.accounts,
		Keys:      a.keys,
		ErrorPage: pages.Error,
		Logger:    log,
		Metrics:   m,
		Factors:   a.accounts,
		// The account API's password checks share the pages' per-account
		// limit.
		Recheck: uiCfg.Limits.LoginAccount,
	})
	if err != nil {
		return nil, err
	}
	a.upstreams, err = openUpstreams(ctx, cfg, log, tr)
	if err != nil {
		return nil, err
	}
	connectors := make([]federation.Connector, 0, len(a.upstreams))
	for _, c := range a.upstreams {
		connectors = append(connectors, c)
	}
	fed := fedui.NewHandler(fedui.Deps{
		Connectors:      connectors,
		Flow:            a.provider,
		Accounts:        a.accounts,
		ErrorPage:       pages.Error,
		Secret:          []byte(cfg.Secret),
		PreviousSecrets: cfg.PreviousMasters(),
		Replay:          store,
		Secure:          strings.HasPrefix(cfg.Issuer, "https://"),
		Logger:          log,
		Metrics:         m,
	})
	uiCfg.Upstreams = fed.Buttons()
	uiCfg.DeleteGrace = a.accounts.DeleteGrace()
	uiCfg.SecureCookies = strings.HasPrefix(cfg.Issuer, "https://")
	if s, err := secret.NewSealer([]byte(cfg.Secret), secret.PurposeWebAuthn, cfg.PreviousMasters()...); err == nil {
		uiCfg.Ceremonies = s
	}
	ui := loginui.New(pages, a.provider, a.accounts, uiCfg, log)

	pub := mux.NewRouter()
	pub.Use(m.Middleware, accesslog.Route)
	a.provider.Routes(pub)
	ui.Routes(pub)
	fed.Routes(pub)
	// Malformed text is refused before any route sees it, on both
	// listeners, each in the format of the route that was asked.
	// The client's address is decided once per request, the same way on
	// both listeners, for every log, limit and session that records it.
	proxies, err := clientip.ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("LATCHKEY_TRUSTED_PROXIES: %w", err)
	}
	// Outermost: the access log (one line per request, matched or not),
	// then the client's address, which everything inside records.
	outer := clientip.Middleware(proxies)
	if cfg.AccessLog {
		ipMW := outer
		logMW := accesslog.Middleware(log)
		outer = func(h http.Handler) http.Handler { return logMW(ipMW(h)) }
	}
	withIP := outer
	a.public = tr.Middleware("latchkey", withDeadline(cfg.RequestTimeout, withIP(securityHeaders(httpx.RejectMalformedText(log, func(w http.ResponseWriter, r *http.Request, detail string) {
		if provider.AnswersJSON(r.URL.Path) {
			provider.WriteInvalidRequest(w, r, detail)
			return
		}
		pages.BadRequest(w, r, detail)
	})(pub)))))
	a.admin = tr.Middleware("latchkey-admin", withIP(httpx.RejectMalformedText(log, admin.WriteBadRequest)(admin.NewServer(admin.Deps{
		DB: store, Draining: a.draining.Load, Metrics: m.Handler(), MetricsToken: cfg.MetricsToken, Profiling: cfg.Profiling,
		Accounts: a.accounts, Tokens: a.provider, Keys: a.keys, Logger: log,
		Middleware: func(h http.Handler) http.Handler { return m.Middleware(accesslog.Route(h)) }}))))
	ok = true
	return a, nil
}

// openUpstreams runs discovery for every configured upstream identity
// provider. One that fails stops the start, naming it, unless
// LATCHKEY_UPSTREAMS_OPTIONAL is set: then it is left out (no button) with
// a warning.
func openUpstreams(ctx context.Context, cfg *config.Config, log *slog.Logger, tr *tracing.Tracing) ([]*federation.OIDC, error) {
	var out []*federation.OIDC
	for _, u := range cfg.Upstreams {
		fc := federation.Config{
			ID:            u.ID,
			Name:          u.Name,
			Issuer:        u.Issuer,
			ClientID:      u.ClientID,
			ClientSecret:  u.ClientSecret,
			RedirectURL:   cfg.Issuer + "/federation/" + u.ID + "/callback",
			Scopes:        u.Scopes,
			HostedDomains: u.HostedDomains,
			Claims:        federation.ClaimNames(u.Claims),
		}
		if tr.Enabled {
			fc.HTTPClient = &http.Client{Timeout: 15 * time.Second, Transport: tr.Transport(http.DefaultTransport)}
		}
		if u.Issuer == federation.GoogleIssuer {
			fc.LoginPrompt = federation.GoogleConfig(u.ClientID, u.ClientSecret, u.HostedDomains).LoginPrompt
		}
		c, err := federation.Open(ctx, fc)
		if err != nil {
			if cfg.UpstreamsOptional {
				log.Warn("upstream identity provider disabled (LATCHKEY_UPSTREAMS_OPTIONAL)", "upstream", u.ID, "err", err)
				continue
			}
			for _, c := range out {
				_ = c.Close()
			}
			return nil, fmt.Errorf("%w (set LATCHKEY_UPSTREAMS_OPTIONAL=true to start without it)", err)
		}
		out = append(out, c)
	}
	return out, nil
}

func newKeyManager(cfg *config.Config, store storage.Store, log *slog.Logger) (*keys.Manager, error) {
	tokenLifetime := max(cfg.IDTokenTTL, cfg.AccessTokenTTL)
	return keys.New(store, keys.Config{
		Secret:          []byte(cfg.Secret),
		PreviousSecrets: cfg.PreviousMasters(),
		PublishDelay:    cfg.EffectiveKeyPublishDelay(),
		JWKSMaxAge:      cfg.JWKSMaxAge,
		RotateEvery:     cfg.KeyRotateEvery,
		TokenLifetime:   tokenLifetime,
		RefreshEvery:    cfg.KeyRefreshEvery,
		Logger:          log,
	})
}

// newAccounts builds the account rules; mailer may be nil (the CLI sends
// no email).
func newAccounts(cfg *config.Config, store storage.Store, log *slog.Logger, mailer accounts.Mailer) *accounts.Service {
	return newAccountsWith(cfg, store, log, mailer, nil)
}

// newAccountsWith is newAccounts recording password hashing spans with
// tracer (nil: none).
func newAccountsWith(cfg *config.Config, store storage.Store, log *slog.Logger, mailer accounts.Mailer, tracer trace.Tracer) *accounts.Service {
	threshold := cfg.LockoutThreshold
	if threshold == 0 {
		threshold = -1 // accounts: negative disables
	}
	// NewSealer fails only for a key AES refuses; Derive always gives 32
	// bytes. Without a sealer, enrolling a factor fails with a clear error.
	var factorSealer accounts.Sealer
	if s, err := secret.NewSealer([]byte(cfg.Secret), secret.PurposeTOTP, cfg.PreviousMasters()...); err == nil {
		factorSealer = s
	} else {
		log.Error("TOTP secrets cannot be sealed", "err", err)
	}
	var clientSealer accounts.Sealer
	if s, err := secret.NewSealer([]byte(cfg.Secret), secret.PurposeClientJWT, cfg.PreviousMasters()...); err == nil {
		clientSealer = s
	} else {
		log.Error("client_secret_jwt secrets cannot be sealed", "err", err)
	}
	// Passkeys need a relying party id: the issuer's host.
	wa, err := accounts.NewWebAuthn(cfg.Issuer, cfg.BrandName)
	if err != nil {
		log.Info("passkeys are off", "reason", err.Error())
	}
	var hasher accounts.PasswordHasher = accounts.NewArgon2id(accounts.Argon2Params{
		MemoryKiB:   cfg.Argon2MemoryKiB,
		Iterations:  cfg.Argon2Iterations,
		Parallelism: cfg.Argon2Parallelism,
	}, cfg.PasswordHashConcurrency)
	if tracer != nil {
		hasher = tracedHasher{hasher, tracer}
	}
	return accounts.New(store, accounts.Options{
		WebAuthn:             wa,
		FactorSealer:         factorSealer,
		ClientSecretSealer:   clientSealer,
		TOTPIssuer:           cfg.BrandName,
		Hasher:               hasher,
		SessionTTL:           cfg.SessionTTL,
		Logger:               log,
		BaseURL:              cfg.Issuer,
		Mailer:               mailer,
		RequireVerifiedEmail: cfg.RequireVerifiedEmail,
		RegistrationDisabled: !cfg.Registration,
		VerifyTTL:            cfg.VerifyTokenTTL,
		ResetTTL:             cfg.ResetTokenTTL,
		DeleteGrace:          cfg.DeleteGrace,
		Lockout:              accounts.LockoutPolicy{Threshold: threshold, Base: cfg.LockoutBase, Max: cfg.LockoutMax},
	})
}

// loginUIConfig turns the settings into the login UI's behaviour; the
// values were validated when the configuration was loaded.
// The limits live in the store, so they hold for every replica together.
func loginUIConfig(cfg *config.Config, store ratelimit.Store, m *metrics.Metrics) (loginui.Config, error) {
	limiter := func(env, name, spec string) (loginui.Limiter, error) {
		l, err := ratelimit.ParseLimit(spec)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", env, err)
		}
		if l.Unlimited() {
			return nil, nil
		}
		return ratelimit.New(store, l, ratelimit.WithOnReject(func() { m.RateLimited(name) })), nil
	}
	var lim loginui.Limits
	for _, x := range []struct {
		dst             *loginui.Limiter
		env, name, spec string
	}{
		{&lim.LoginIP, "LATCHKEY_RATE_LOGIN_IP", "login_ip", cfg.RateLoginIP},
		{&lim.LoginAccount, "LATCHKEY_RATE_LOGIN_ACCOUNT", "login_account", cfg.RateLoginAccount},
		{&lim.Register, "LATCHKEY_RATE_REGISTER", "register", cfg.RateRegister},
		{&lim.Email, "LATCHKEY_RATE_EMAIL", "email", cfg.RateEmail},
		{&lim.Reset, "LATCHKEY_RATE_RESET", "reset", cfg.RateReset},
	} {
		l, err := limiter(x.env, x.name, x.spec)
		if err != nil {
			return loginui.Config{}, err
		}
		if l != nil {
			*x.dst = l
		}
	}
	return loginui.Config{RegistrationEnabled: cfg.Registration, Limits: lim}, nil
}

// withDeadline bounds every public request's context by d, so that with a
// slow database or an exhausted pool a request's store calls fail as an
// outage (503, Retry-After) instead of waiting without end. The admin
// listener has none: its imports and profiles may legitimately run long.
func withDeadline(d time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// securityHeaders sets headers every public response should carry.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

// Timeouts and limits of both listeners, kept in one place so that the
// admin listener cannot drift from the public one: without them a client
// holds a connection (and its goroutine) for as long as it likes by
// sending its request a byte at a time. The write timeout does not cut
// long pprof profiles short: net/http/pprof extends the connection's write
// deadline by the profile's `seconds` itself.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
)

// newServers returns the public and admin http.Servers, in that order.
func newServers(public, admin http.Handler) []*http.Server {
	mk := func(h http.Handler) *http.Server {
		return &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout,
			WriteTimeout: writeTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes}
	}
	return []*http.Server{mk(public), mk(admin)}
}

// runServe starts the public and admin listeners and the background jobs
// (key refresh and rotation, pruning), and blocks until ctx ends; then it
// shuts both listeners down gracefully.
func runServe(ctx context.Context, cfg *config.Config, stdout io.Writer, log *slog.Logger, onReady func(*app) error) error {
	a, err := newApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.store.Close()
	defer a.closeUpstreams()
	if onReady != nil {
		if err := onReady(a); err != nil {
			return err
		}
	}

	pubLn, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("LATCHKEY_HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	admLn, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		_ = pubLn.Close()
		return fmt.Errorf("LATCHKEY_ADMIN_ADDR %s: %w", cfg.AdminAddr, err)
	}
	servers := newServers(a.public, a.admin)
	if cfg.LogFormat == "json" {
		// Every line of a JSON log stream is JSON: the banner is a log line.
		log.Info("latchkey listening", "issuer", cfg.Issuer, "public", "http://"+pubLn.Addr().String(),
			"admin", "http://"+admLn.Addr().String())
	} else {
		fmt.Fprintf(stdout, "latchkey: issuer %s\nlatchkey: public listener http://%s\nlatchkey: admin listener http://%s\n",
			cfg.Issuer, pubLn.Addr(), admLn.Addr())
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	for i, ln := range []net.Listener{pubLn, admLn} {
		srv := servers[i]
		wg.Go(func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
				cancel()
			}
		})
	}
	wg.Go(func() { a.keys.Run(ctx) })
	wg.Go(func() { a.mail.outbox.Run(ctx) })
	wg.Go(func() { provider.RunPruner(ctx, a.store, cfg.PruneEvery, cfg.PruneBatch, log) })

	<-ctx.Done()
	// A graceful stop: readiness fails first, so load balancers route
	// elsewhere; then the listeners stop accepting and the requests in
	// flight finish; the background jobs stop (an email being sent is sent
	// to the end); all within the shutdown timeout.
	deadline := time.Now().Add(cfg.ShutdownTimeout)
	a.draining.Store(true)
	log.Info("shutting down", "delay", cfg.ShutdownDelay, "timeout", cfg.ShutdownTimeout)
	time.Sleep(cfg.ShutdownDelay)
	shutdownCtx, stop := context.WithDeadline(context.Background(), deadline)
	defer stop()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil {
			log.Warn("shutdown timeout: closing connections with requests in flight", "err", err)
			_ = srv.Close()
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-shutdownCtx.Done():
		log.Warn("shutdown timeout: exiting with background work in flight")
	}
	flushCtx, cancelFlush := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancelFlush()
	if err := a.tracing.Shutdown(flushCtx); err != nil {
		log.Warn("flushing trace spans", "err", err)
	}
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}
