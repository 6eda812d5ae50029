// Package config loads Latchkey's settings.
//
// Settings come from, in increasing precedence: built-in defaults, an
// optional YAML file (--config / LATCHKEY_CONFIG), LATCHKEY_* environment
// variables, and command-line flags the user actually set. Every value,
// whatever its source, goes through the same parser, so an invalid value
// produces the same error everywhere, always naming the environment
// variable of the setting (and, when it is not the environment, where the
// value came from).
package config

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/latchkey/latchkey/internal/brand"
	"github.com/latchkey/latchkey/internal/clientip"
	"github.com/latchkey/latchkey/internal/ratelimit"
	"github.com/latchkey/latchkey/internal/secret"
)

// Upstream is an external OpenID Connect provider people can sign in with.
// Its callback URL is ISSUER/federation/ID/callback.
type Upstream struct {
	ID            string         `yaml:"id"`
	Name          string         `yaml:"name"`
	Issuer        string         `yaml:"issuer"`
	ClientID      string         `yaml:"client_id"`
	ClientSecret  string         `yaml:"client_secret"`
	Scopes        []string       `yaml:"scopes"`
	HostedDomains []string       `yaml:"hosted_domains"`
	Claims        UpstreamClaims `yaml:"claims"`
}

// UpstreamClaims names the upstream's claims Latchkey reads.
type UpstreamClaims struct {
	Username     string `yaml:"username"`      // default preferred_username
	Name         string `yaml:"name"`          // default name
	Picture      string `yaml:"picture"`       // default picture
	HostedDomain string `yaml:"hosted_domain"` // default hd
}

// bearerToken is RFC 6750's b64token: what a Bearer header can carry.
var bearerToken = regexp.MustCompile(`^[A-Za-z0-9\-._~+/]+=*$`)

var upstreamID = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// EnvPrefix is the prefix of every environment variable read by Load.
const EnvPrefix = "LATCHKEY_"

// Config holds every Latchkey setting. Build one with Load.
type Config struct {
	ConfigFile          string // path of the YAML file that was read; "" = none
	Issuer              string // absolute http(s) URL without trailing slash
	AllowInsecureIssuer bool   // allow an http issuer on a non-loopback host

	HTTPAddr     string
	AdminAddr    string
	MetricsToken string // bearer token /metrics requires; "" = unauthenticated

	DataDir     string
	DatabaseURL string
	Secret      string
	// PreviousSecrets are earlier values of Secret, comma-separated, still
	// accepted during a rotation (see PreviousMasters).
	PreviousSecrets string
	SecretGenerated bool // true when the development secret file was used or created
	MigrateOnStart  bool
	DBMaxOpenConns  int // 0 = let storage choose

	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	IDTokenTTL      time.Duration
	AuthCodeTTL     time.Duration
	SessionTTL      time.Duration // browser session
	LoginTTL        time.Duration // pending authorization request

	KeyRotateEvery  time.Duration // 0 disables rotation
	KeyPublishDelay time.Duration // 0 = JWKSMaxAge; see EffectiveKeyPublishDelay
	KeyRefreshEvery time.Duration
	JWKSMaxAge      time.Duration

	Argon2MemoryKiB         uint32
	Argon2Iterations        uint32
	Argon2Parallelism       uint8
	PasswordHashConcurrency int // resolved to runtime.GOMAXPROCS(0) by Load when 0

	PruneEvery time.Duration
	// ShutdownDelay and ShutdownTimeout shape a graceful stop (SIGTERM).
	ShutdownDelay, ShutdownTimeout time.Duration
	// OpenTelemetry traces (internal/tracing).
	OTelExporter      string
	OTelEndpoint      string
	OTelSamplePercent int
	// RequestTimeout bounds a request's database work (see the setting).
	RequestTimeout time.Duration
	PruneBatch     int

	LogLevel  string // debug|info|warn|error
	LogFormat string // text|json
	AccessLog bool   // one info line per request

	// Login UI, branding and the account lifecycle.
	BrandName            string
	BrandLogoURL         string
	BrandColor           string
	SupportEmail         string
	Registration         bool // self-service registration enabled
	RequireVerifiedEmail bool
	VerifyTokenTTL       time.Duration
	ResetTokenTTL        time.Duration
	DeleteGrace          time.Duration // how long a soft-deleted account can be restored
	SMTPURL              string        // "" = log emails instead of sending them
	MailFrom             string

	// Abuse protection: rate limits ("COUNT/PERIOD" or "off") and lockout.
	RateLoginIP      string
	RateLoginAccount string
	RateRegister     string
	RateEmail        string
	RateReset        string
	LockoutThreshold int // 0 disables lockout
	LockoutBase      time.Duration
	LockoutMax       time.Duration
	TrustedProxies   string // comma-separated CIDRs whose X-Forwarded-For is believed

	Profiling bool // serve /debug/pprof on the admin listener

	// Upstream identity providers: the YAML file's `upstreams:` list, plus
	// the Google preset when LATCHKEY_GOOGLE_CLIENT_ID is set.
	Upstreams          []Upstream
	GoogleClientID     string
	GoogleClientSecret string
	GoogleHostedDomain string // comma-separated allowed `hd` values
	UpstreamsOptional  bool   // a failing upstream is disabled with a warning instead of stopping start

	Warnings []string // messages the caller logs at start

	// sources records, by setting name, where a non-default value came
	// from (for error messages); absent means default or environment.
	sources map[string]string
}

// Setting describes one setting for docs and --help.
type Setting struct {
	Name    string // snake_case key in the YAML file
	Env     string // environment variable
	Flag    string // command-line flag, without the leading "--"
	Default string // default value as it would be written in the environment
	Help    string
}

// setting is the internal description of a setting: the exported parts
// plus how to reach its Config field.
type setting struct {
	name   string
	def    string // default, parsed with the same code as every other value
	docDef string // Default shown in docs, when different from def
	help   string
	noFile bool // not allowed in the YAML file (config)
	field  func(*Config) any
}

func (s setting) env() string  { return EnvPrefix + strings.ToUpper(s.name) }
func (s setting) flag() string { return strings.ReplaceAll(s.name, "_", "-") }

const nameConfig = "config"

// settings returns the table of every setting, in a stable order.
func settings() []setting {
	return []setting{
		{name: nameConfig, help: "Path of a YAML file with settings (keys are the setting names, e.g. access_token_ttl: 15m). Flag and environment only.", noFile: true,
			field: func(c *Config) any { return &c.ConfigFile }},
		{name: "issuer", def: "http://localhost:8080", help: "Issuer URL: the public base URL of this server, as it appears in tokens. Must be https unless the host is localhost, 127.0.0.1 or ::1.",
			field: func(c *Config) any { return &c.Issuer }},
		{name: "allow_insecure_issuer", def: "false", help: "Allow an http:// issuer on a non-loopback host (testing only).",
			field: func(c *Config) any { return &c.AllowInsecureIssuer }},
		{name: "http_addr", def: ":8080", help: "Listen address of the public OpenID Connect server.",
			field: func(c *Config) any { return &c.HTTPAddr }},
		{name: "admin_addr", def: "127.0.0.1:8081", help: "Listen address of the admin server (metrics, health). Keep it private.",
			field: func(c *Config) any { return &c.AdminAddr }},
		{name: "metrics_token", def: "", help: "Bearer token scrapers must send to /metrics on the admin listener (Authorization: Bearer TOKEN; at least 16 characters). When unset /metrics is unauthenticated: keep the admin listener on a private address. Prefer the environment over the flag.",
			field: func(c *Config) any { return &c.MetricsToken }},
		{name: "data_dir", def: "data", help: "Directory for local state: the development secret and the default SQLite database.",
			field: func(c *Config) any { return &c.DataDir }},
		{name: "database_url", docDef: "sqlite:<data_dir>/latchkey.db", help: "Database URL: postgres://, postgresql://, sqlite: or file:.",
			field: func(c *Config) any { return &c.DatabaseURL }},
		{name: "secret", help: "Server secret (at least 32 characters) used to protect tokens and sessions. When unset, a development secret is generated in <data_dir>/secret. Prefer the environment over the flag.",
			field: func(c *Config) any { return &c.Secret }},
		{name: "previous_secrets", help: "Earlier server secrets, comma-separated, newest first, during a rotation of the secret: tokens, cookies and sealed keys made with them are still accepted and opened; everything new uses the secret. Run `latchkey secrets reseal`, wait out the longest token lifetime, then remove them.",
			field: func(c *Config) any { return &c.PreviousSecrets }},
		{name: "migrate", def: "true", help: "Apply database migrations on start.",
			field: func(c *Config) any { return &c.MigrateOnStart }},
		{name: "db_max_open_conns", def: "0", help: "Maximum open database connections; 0 lets the storage layer choose.",
			field: func(c *Config) any { return &c.DBMaxOpenConns }},
		{name: "access_token_ttl", def: "1h", help: "Lifetime of access tokens.",
			field: func(c *Config) any { return &c.AccessTokenTTL }},
		{name: "refresh_token_ttl", def: "720h", help: "Lifetime of refresh tokens.",
			field: func(c *Config) any { return &c.RefreshTokenTTL }},
		{name: "id_token_ttl", def: "1h", help: "Lifetime of ID tokens.",
			field: func(c *Config) any { return &c.IDTokenTTL }},
		{name: "auth_code_ttl", def: "10m", help: "Lifetime of authorization codes.",
			field: func(c *Config) any { return &c.AuthCodeTTL }},
		{name: "session_ttl", def: "720h", help: "Lifetime of a browser login session.",
			field: func(c *Config) any { return &c.SessionTTL }},
		{name: "login_ttl", def: "30m", help: "Time a user has to complete a pending authorization request.",
			field: func(c *Config) any { return &c.LoginTTL }},
		{name: "key_rotate_every", def: "720h", help: "Signing key rotation interval; 0 disables rotation.",
			field: func(c *Config) any { return &c.KeyRotateEvery }},
		{name: "key_publish_delay", def: "0", help: "Time a new signing key is published in the JWKS before it is used for signing; 0 means the JWKS max age.",
			field: func(c *Config) any { return &c.KeyPublishDelay }},
		{name: "key_refresh_every", def: "30s", help: "How often each replica reloads signing keys from the database; at most 1m.",
			field: func(c *Config) any { return &c.KeyRefreshEvery }},
		{name: "jwks_max_age", def: "5m", help: "Cache-Control max-age of the JWKS document.",
			field: func(c *Config) any { return &c.JWKSMaxAge }},
		{name: "argon2_memory_kib", def: "19456", help: "Argon2id memory per password hash, in KiB (at least 1024).",
			field: func(c *Config) any { return &c.Argon2MemoryKiB }},
		{name: "argon2_iterations", def: "2", help: "Argon2id iterations per password hash (at least 1).",
			field: func(c *Config) any { return &c.Argon2Iterations }},
		{name: "argon2_parallelism", def: "1", help: "Argon2id parallelism per password hash (1 to 255).",
			field: func(c *Config) any { return &c.Argon2Parallelism }},
		{name: "password_hash_concurrency", def: "0", help: "Maximum password hashes computed at once; 0 means GOMAXPROCS.",
			field: func(c *Config) any { return &c.PasswordHashConcurrency }},
		{name: "prune_every", def: "1m", help: "Interval between prunes of expired tokens, codes and sessions.",
			field: func(c *Config) any { return &c.PruneEvery }},
		{name: "otel_exporter", def: "none", help: "OpenTelemetry traces: none, otlphttp (OTLP over HTTP, port 4318) or otlpgrpc (port 4317). Spans cover HTTP requests (W3C traceparent continued), SQL statements, password hashing, upstream identity provider calls and mail sending.",
			field: func(c *Config) any { return &c.OTelExporter }},
		{name: "otel_endpoint", def: "", help: "The OTLP collector's URL, e.g. http://otel-collector:4318; when unset the standard OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) applies, then localhost.",
			field: func(c *Config) any { return &c.OTelEndpoint }},
		{name: "otel_sample_percent", def: "100", help: "Percent of traces started here that are recorded (0-100); a caller's sampled traceparent is always followed.",
			field: func(c *Config) any { return &c.OTelSamplePercent }},
		{name: "request_timeout", def: "10s", help: "The longest a request waits on the database (for a free connection included); past it the request is answered 503 with Retry-After instead of hanging when the database is slow or the pool exhausted.",
			field: func(c *Config) any { return &c.RequestTimeout }},
		{name: "shutdown_delay", def: "0s", help: "On SIGTERM, how long /readyz answers 503 before the listeners stop taking requests, so that load balancers stop routing here first (5s on Kubernetes).",
			field: func(c *Config) any { return &c.ShutdownDelay }},
		{name: "shutdown_timeout", def: "20s", help: "On SIGTERM, the most a graceful stop takes, the delay included: in-flight requests and email sends finish within it, then the process exits.",
			field: func(c *Config) any { return &c.ShutdownTimeout }},
		{name: "prune_batch", def: "500", help: "Maximum rows deleted per prune statement.",
			field: func(c *Config) any { return &c.PruneBatch }},
		{name: "log_level", def: "info", help: "Log level: debug, info, warn or error.",
			field: func(c *Config) any { return &c.LogLevel }},
		{name: "log_format", def: "text", help: "Log format: text or json.",
			field: func(c *Config) any { return &c.LogFormat }},
		{name: "access_log", def: "true", help: "Log one info line per request (method, route, status, duration, request id, client id).",
			field: func(c *Config) any { return &c.AccessLog }},
		{name: "brand_name", def: "Latchkey", help: "Product name shown on the pages and in emails.",
			field: func(c *Config) any { return &c.BrandName }},
		{name: "brand_logo_url", def: "", help: "https URL of a logo shown instead of the product name.",
			field: func(c *Config) any { return &c.BrandLogoURL }},
		{name: "brand_color", def: "", help: "Primary color of the pages and emails: #rgb or #rrggbb, e.g. #2f5bea (quote it in YAML).",
			field: func(c *Config) any { return &c.BrandColor }},
		{name: "support_email", def: "", help: "Support address shown on the pages and in emails.",
			field: func(c *Config) any { return &c.SupportEmail }},
		{name: "registration", def: "true", help: "Allow self-service registration.",
			field: func(c *Config) any { return &c.Registration }},
		{name: "require_verified_email", def: "false", help: "Refuse sign-in until the email address is verified.",
			field: func(c *Config) any { return &c.RequireVerifiedEmail }},
		{name: "verify_token_ttl", def: "24h", help: "Lifetime of email verification links.",
			field: func(c *Config) any { return &c.VerifyTokenTTL }},
		{name: "reset_token_ttl", def: "1h", help: "Lifetime of password reset links.",
			field: func(c *Config) any { return &c.ResetTokenTTL }},
		{name: "delete_grace", def: "720h", help: "How long an admin can restore a soft-deleted account.",
			field: func(c *Config) any { return &c.DeleteGrace }},
		{name: "smtp_url", def: "", help: "SMTP server: smtp://user:pass@host:587 (STARTTLS) or smtps://host:465; unset logs emails instead.",
			field: func(c *Config) any { return &c.SMTPURL }},
		{name: "mail_from", def: "Latchkey <no-reply@localhost>", help: "From address of the emails.",
			field: func(c *Config) any { return &c.MailFrom }},
		{name: "rate_login_ip", def: "30/1m", help: "Sign-in attempts per client IP (COUNT/PERIOD, or off).",
			field: func(c *Config) any { return &c.RateLoginIP }},
		{name: "rate_login_account", def: "10/15m", help: "Sign-in attempts per username or email typed.",
			field: func(c *Config) any { return &c.RateLoginAccount }},
		{name: "rate_register", def: "10/1h", help: "Registrations per client IP.",
			field: func(c *Config) any { return &c.RateRegister }},
		{name: "rate_email", def: "5/1h", help: "Verification and reset emails per client IP and per address.",
			field: func(c *Config) any { return &c.RateEmail }},
		{name: "rate_reset", def: "10/1h", help: "Password reset submissions per client IP.",
			field: func(c *Config) any { return &c.RateReset }},
		{name: "lockout_threshold", def: "5", help: "Consecutive failed sign-ins that lock an account; 0 disables lockout.",
			field: func(c *Config) any { return &c.LockoutThreshold }},
		{name: "lockout_base", def: "1m", help: "First lock duration; it doubles with each further failure.",
			field: func(c *Config) any { return &c.LockoutBase }},
		{name: "lockout_max", def: "1h", help: "Longest lock duration.",
			field: func(c *Config) any { return &c.LockoutMax }},
		{name: "trusted_proxies", def: "", help: "Comma-separated CIDRs of reverse proxies whose X-Forwarded-For is believed.",
			field: func(c *Config) any { return &c.TrustedProxies }},
		{name: "google_client_id", def: "", help: "Enables \"Continue with Google\": the OAuth client id from Google Cloud.",
			field: func(c *Config) any { return &c.GoogleClientID }},
		{name: "google_client_secret", def: "", help: "Its client secret.",
			field: func(c *Config) any { return &c.GoogleClientSecret }},
		{name: "google_hosted_domains", def: "", help: "Comma-separated Google Workspace domains (hd claim) allowed to sign in; empty allows any.",
			field: func(c *Config) any { return &c.GoogleHostedDomain }},
		{name: "upstreams_optional", def: "false", help: "Start even when an upstream identity provider is unreachable or misconfigured (it is disabled with a warning).",
			field: func(c *Config) any { return &c.UpstreamsOptional }},
		{name: "profiling", def: "false", help: "Serve Go's /debug/pprof profiles on the admin listener.",
			field: func(c *Config) any { return &c.Profiling }},
	}
}

// Settings returns every setting in a stable order.
func Settings() []Setting {
	ss := settings()
	out := make([]Setting, len(ss))
	for i, s := range ss {
		def := s.def
		if s.docDef != "" {
			def = s.docDef
		}
		out[i] = Setting{Name: s.name, Env: s.env(), Flag: s.flag(), Default: def, Help: s.help}
	}
	return out
}

// flagValue is the pflag.Value of every setting flag: it only stores the
// string, which Load parses with the same code as environment values.
type flagValue struct {
	value string
	typ   string
}

func (f *flagValue) String() string     { return f.value }
func (f *flagValue) Set(v string) error { f.value = v; return nil }
func (f *flagValue) Type() string       { return f.typ }

// RegisterFlags adds one flag per setting to fs.
func RegisterFlags(fs *pflag.FlagSet) {
	var c Config
	for _, s := range settings() {
		typ := kindOf(s.field(&c))
		f := fs.VarPF(&flagValue{value: s.def, typ: typ}, s.flag(), "", s.help+" (env "+s.env()+")")
		if s.docDef != "" {
			f.DefValue = s.docDef // shown in --help only; Load ignores unset flags
		}
		if typ == "bool" {
			f.NoOptDefVal = "true"
		}
	}
}

func kindOf(p any) string {
	switch p.(type) {
	case *string:
		return "string"
	case *bool:
		return "bool"
	case *int:
		return "int"
	case *uint32:
		return "uint32"
	case *uint8:
		return "uint8"
	case *time.Duration:
		return "duration"
	}
	panic(fmt.Sprintf("config: unsupported field type %T", p))
}

// parseInto parses v according to the type of the field p points to and
// stores it. The error does not name the setting; the caller adds that.
func parseInto(p any, v string) error {
	switch p := p.(type) {
	case *string:
		*p = v
	case *bool:
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("invalid boolean %q (use true or false)", v)
		}
		*p = b
	case *int:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, strconv.IntSize)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return fmt.Errorf("integer %q out of range", v)
			}
			return fmt.Errorf("invalid integer %q", v)
		}
		*p = int(n)
	case *uint32:
		n, err := parseUint(v, 32)
		if err != nil {
			return err
		}
		*p = uint32(n)
	case *uint8:
		n, err := parseUint(v, 8)
		if err != nil {
			return err
		}
		*p = uint8(n)
	case *time.Duration:
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("invalid duration %q (use a Go duration such as \"90s\", \"15m\" or \"720h\")", v)
		}
		*p = d
	default:
		panic(fmt.Sprintf("config: unsupported field type %T", p))
	}
	return nil
}

func parseUint(v string, bits int) (uint64, error) {
	s := strings.TrimSpace(v)
	n, err := strconv.ParseUint(s, 10, bits)
	if err == nil {
		return n, nil
	}
	max := uint64(1)<<bits - 1
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("value %q out of range (0 to %d)", v, max)
	}
	if _, ierr := strconv.ParseInt(s, 10, 64); ierr == nil || strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("value %q out of range (0 to %d)", v, max)
	}
	return 0, fmt.Errorf("invalid integer %q", v)
}

// normalize cleans a raw value of setting name: surrounding space is
// removed (except from the secret), the issuer loses its trailing slashes
// and enumerations are lower-cased.
func normalize(name, v string) string {
	if name == "secret" {
		return v
	}
	v = strings.TrimSpace(v)
	switch name {
	case "issuer":
		v = strings.TrimRight(v, "/")
	case "log_level", "log_format":
		v = strings.ToLower(v)
	}
	return v
}

// apply parses v into the field of s in c; source describes where v came
// from ("" for the environment).
func (c *Config) apply(s setting, v, source string) error {
	if err := parseInto(s.field(c), normalize(s.name, v)); err != nil {
		return fmt.Errorf("%s: %w", c.label(s.env(), source), err)
	}
	if c.sources == nil {
		c.sources = map[string]string{}
	}
	if source == "" {
		delete(c.sources, s.name)
	} else {
		c.sources[s.name] = source
	}
	return nil
}

func (c *Config) label(env, source string) string {
	if source == "" {
		return env
	}
	return env + " (" + source + ")"
}

// Load builds the Config from defaults, the YAML file named by --config or
// LATCHKEY_CONFIG, the environment (read through getenv) and the flags of
// fs that were set (fs may be nil), then validates it. It reads no file
// other than the config file.
func Load(fs *pflag.FlagSet, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	ss := settings()
	c := &Config{}
	for _, s := range ss {
		if err := parseInto(s.field(c), s.def); err != nil && s.def != "" {
			panic(fmt.Sprintf("config: bad default for %s: %v", s.name, err))
		}
	}

	flagValue := func(s setting) (string, bool) {
		if fs == nil || fs.Lookup(s.flag()) == nil || !fs.Changed(s.flag()) {
			return "", false
		}
		return fs.Lookup(s.flag()).Value.String(), true
	}

	var errs []error

	// The config file itself: flag beats environment.
	cfgSetting := ss[0] // settings() lists config first
	if v, ok := flagValue(cfgSetting); ok {
		c.ConfigFile = strings.TrimSpace(v)
		c.sources = map[string]string{nameConfig: "flag --" + cfgSetting.flag()}
	} else {
		c.ConfigFile = strings.TrimSpace(getenv(cfgSetting.env()))
	}
	if c.ConfigFile != "" {
		if err := c.loadFile(ss); err != nil {
			return nil, err
		}
	}

	for _, s := range ss {
		if s.name == nameConfig {
			continue
		}
		if v := getenv(s.env()); v != "" {
			if err := c.apply(s, v, ""); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, s := range ss {
		if s.name == nameConfig {
			continue
		}
		if v, ok := flagValue(s); ok {
			if err := c.apply(s, v, "flag --"+s.flag()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	if c.DatabaseURL == "" {
		c.DatabaseURL = "sqlite:" + filepath.Join(c.DataDir, "latchkey.db")
	}
	if c.PasswordHashConcurrency == 0 {
		c.PasswordHashConcurrency = runtime.GOMAXPROCS(0)
	}
	if c.GoogleClientID != "" {
		g := Upstream{ID: "google", Name: "Google", Issuer: "https://accounts.google.com",
			ClientID: c.GoogleClientID, ClientSecret: c.GoogleClientSecret, Scopes: []string{"openid", "email", "profile"}}
		for _, d := range strings.Split(c.GoogleHostedDomain, ",") {
			if d = strings.TrimSpace(d); d != "" {
				g.HostedDomains = append(g.HostedDomains, d)
			}
		}
		c.Upstreams = append(c.Upstreams, g)
	}
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		if len(u.Scopes) == 0 {
			u.Scopes = []string{"openid", "email", "profile"}
		}
		if u.Name == "" {
			u.Name = u.ID
		}
		if u.Claims.Username == "" {
			u.Claims.Username = "preferred_username"
		}
		if u.Claims.Name == "" {
			u.Claims.Name = "name"
		}
		if u.Claims.Picture == "" {
			u.Claims.Picture = "picture"
		}
		if u.Claims.HostedDomain == "" {
			u.Claims.HostedDomain = "hd"
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// loadFile reads the YAML file c.ConfigFile and applies its settings.
func (c *Config) loadFile(ss []setting) error {
	cfgLabel := c.label(ss[0].env(), c.sources[nameConfig])
	data, err := os.ReadFile(c.ConfigFile)
	if err != nil {
		return fmt.Errorf("%s: reading config file: %w", cfgLabel, err)
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty file
		}
		return fmt.Errorf("%s: config file %q: %w", cfgLabel, c.ConfigFile, err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil
		}
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil // document with only comments
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("%s: config file %q: line %d: expected a mapping of setting names to values", cfgLabel, c.ConfigFile, root.Line)
	}

	byName := map[string]setting{}
	for _, s := range ss {
		if !s.noFile {
			byName[s.name] = s
		}
	}
	var errs []error
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		where := fmt.Sprintf("config file %q: line %d", c.ConfigFile, k.Line)
		if k.Kind == yaml.ScalarNode && k.Value == "upstreams" {
			ups, err := decodeUpstreams(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: upstreams: %w", where, err))
			}
			c.Upstreams = ups
			continue
		}
		s, ok := byName[k.Value]
		if k.Kind != yaml.ScalarNode || !ok {
			msg := fmt.Sprintf("%s: unknown key %q", where, k.Value)
			if hint, ok := byName[suggestKey(k.Value)]; ok {
				msg += fmt.Sprintf(" (did you mean %q?)", hint.name)
			}
			errs = append(errs, errors.New(msg))
			continue
		}
		if line, dup := seen[k.Value]; dup {
			errs = append(errs, fmt.Errorf("%s: key %q already set on line %d", where, k.Value, line))
			continue
		}
		seen[k.Value] = k.Line
		if v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias
		}
		source := fmt.Sprintf("%s in config file %q line %d", s.name, c.ConfigFile, k.Line)
		if v.Kind != yaml.ScalarNode {
			errs = append(errs, fmt.Errorf("%s: expected a single value", c.label(s.env(), source)))
			continue
		}
		if v.Tag == "!!null" {
			if s.name == "brand_color" && strings.HasPrefix(k.LineComment, "#") && !strings.HasPrefix(k.LineComment, "# ") {
				// "brand_color: #2f5bea" is a key and a comment.
				errs = append(errs, fmt.Errorf("%s: %s is read as a YAML comment; quote it: brand_color: %q",
					c.label(s.env(), source), k.LineComment, k.LineComment))
			}
			continue // "key:" with no value leaves the default
		}
		if err := c.apply(s, v.Value, source); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// decodeUpstreams reads the `upstreams:` list strictly: an unknown key in
// an entry is an error naming it.
func decodeUpstreams(n *yaml.Node) ([]Upstream, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("line %d: expected a list", n.Line)
	}
	b, err := yaml.Marshal(n)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var ups []Upstream
	if err := dec.Decode(&ups); err != nil {
		return nil, err
	}
	return ups, nil
}

// suggestKey maps likely misspellings of a key (kebab-case, environment
// variable name) to the setting name.
func suggestKey(k string) string {
	k = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(k), "-", "_"))
	return strings.TrimPrefix(k, strings.ToLower(EnvPrefix))
}

// Validate checks every setting and returns all problems joined, each
// naming the environment variable of the setting.
func (c *Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		label := c.label(EnvPrefix+strings.ToUpper(name), c.sources[name])
		errs = append(errs, fmt.Errorf("%s: %s", label, fmt.Sprintf(format, args...)))
	}

	if msg := checkIssuer(c.Issuer, c.AllowInsecureIssuer); msg != "" {
		bad("issuer", "%s", msg)
	}
	if msg := checkAddr(c.HTTPAddr); msg != "" {
		bad("http_addr", "%s", msg)
	}
	if msg := checkAddr(c.AdminAddr); msg != "" {
		bad("admin_addr", "%s", msg)
	} else if c.AdminAddr == c.HTTPAddr && !strings.HasSuffix(c.AdminAddr, ":0") {
		bad("admin_addr", "must differ from LATCHKEY_HTTP_ADDR (both %q)", c.AdminAddr)
	}
	if c.MetricsToken != "" && (len(c.MetricsToken) < 16 || !bearerToken.MatchString(c.MetricsToken)) {
		// Do not echo it: it is a credential.
		bad("metrics_token", "must be at least 16 characters of A-Z a-z 0-9 - . _ ~ + / (and trailing =), as an Authorization header carries it")
	}
	if strings.TrimSpace(c.DataDir) == "" {
		bad("data_dir", "must not be empty")
	}
	if msg := checkDatabaseURL(c.DatabaseURL); msg != "" {
		bad("database_url", "%s", msg)
	}
	if c.Secret != "" && len(c.Secret) < secret.MinMasterLen {
		bad("secret", "must be at least %d characters (got %d)", secret.MinMasterLen, len(c.Secret))
	}
	switch c.OTelExporter {
	case "none", "otlphttp", "otlpgrpc":
	default:
		bad("otel_exporter", "must be none, otlphttp or otlpgrpc (got %q)", c.OTelExporter)
	}
	if c.OTelSamplePercent < 0 || c.OTelSamplePercent > 100 {
		bad("otel_sample_percent", "must be between 0 and 100 (got %d)", c.OTelSamplePercent)
	}
	if c.OTelEndpoint != "" && !strings.HasPrefix(c.OTelEndpoint, "http://") && !strings.HasPrefix(c.OTelEndpoint, "https://") {
		bad("otel_endpoint", "must be an http:// or https:// URL")
	}
	if c.ShutdownDelay >= c.ShutdownTimeout && c.ShutdownTimeout > 0 {
		bad("shutdown_delay", "must be less than shutdown_timeout (%s)", c.ShutdownTimeout)
	}
	for i, p := range splitSecrets(c.PreviousSecrets) {
		switch {
		case len(p) < secret.MinMasterLen:
			bad("previous_secrets", "entry %d must be at least %d characters (got %d)", i+1, secret.MinMasterLen, len(p))
		case p == c.Secret:
			bad("previous_secrets", "entry %d is the current secret", i+1)
		}
	}
	if c.DBMaxOpenConns < 0 {
		bad("db_max_open_conns", "must be 0 or more (got %d)", c.DBMaxOpenConns)
	}

	positive := []struct {
		name string
		d    time.Duration
	}{
		{"access_token_ttl", c.AccessTokenTTL},
		{"refresh_token_ttl", c.RefreshTokenTTL},
		{"id_token_ttl", c.IDTokenTTL},
		{"auth_code_ttl", c.AuthCodeTTL},
		{"session_ttl", c.SessionTTL},
		{"login_ttl", c.LoginTTL},
		{"prune_every", c.PruneEvery},
		{"shutdown_timeout", c.ShutdownTimeout},
		{"request_timeout", c.RequestTimeout},
	}
	for _, p := range positive {
		if p.d <= 0 {
			bad(p.name, "must be greater than 0 (got %s)", p.d)
		}
	}
	nonNegative := []struct {
		name string
		d    time.Duration
	}{
		{"key_rotate_every", c.KeyRotateEvery},
		{"shutdown_delay", c.ShutdownDelay},
		{"key_publish_delay", c.KeyPublishDelay},
		{"jwks_max_age", c.JWKSMaxAge},
	}
	for _, p := range nonNegative {
		if p.d < 0 {
			bad(p.name, "must not be negative (got %s)", p.d)
		}
	}
	if c.KeyRefreshEvery <= 0 || c.KeyRefreshEvery > time.Minute {
		bad("key_refresh_every", "must be greater than 0 and at most 1m so replicas pick up a key rotation within a minute (got %s)", c.KeyRefreshEvery)
	}

	if c.Argon2MemoryKiB < 1024 {
		bad("argon2_memory_kib", "must be at least 1024 (got %d)", c.Argon2MemoryKiB)
	} else if c.Argon2MemoryKiB < 8*uint32(c.Argon2Parallelism) {
		bad("argon2_memory_kib", "must be at least 8 × LATCHKEY_ARGON2_PARALLELISM = %d (got %d)", 8*uint32(c.Argon2Parallelism), c.Argon2MemoryKiB)
	}
	if c.Argon2Iterations < 1 {
		bad("argon2_iterations", "must be at least 1 (got %d)", c.Argon2Iterations)
	}
	if c.Argon2Parallelism < 1 {
		bad("argon2_parallelism", "must be between 1 and 255 (got %d)", c.Argon2Parallelism)
	}
	if c.PasswordHashConcurrency < 0 {
		bad("password_hash_concurrency", "must be 0 or more (got %d)", c.PasswordHashConcurrency)
	}
	if c.PruneBatch <= 0 {
		bad("prune_batch", "must be greater than 0 (got %d)", c.PruneBatch)
	}
	if _, ok := logLevels[c.LogLevel]; !ok {
		bad("log_level", "unknown level %q (use debug, info, warn or error)", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log_format", "unknown format %q (use text or json)", c.LogFormat)
	}
	for name, v := range map[string]string{"rate_login_ip": c.RateLoginIP, "rate_login_account": c.RateLoginAccount,
		"rate_register": c.RateRegister, "rate_email": c.RateEmail, "rate_reset": c.RateReset} {
		if _, err := ratelimit.ParseLimit(v); err != nil {
			bad(name, "%v", err)
		}
	}
	if _, err := clientip.ParseTrustedProxies(c.TrustedProxies); err != nil {
		bad("trusted_proxies", "%v", err)
	}
	if c.LockoutThreshold < 0 {
		bad("lockout_threshold", "must be 0 or more (got %d)", c.LockoutThreshold)
	}
	if c.LockoutBase <= 0 || c.LockoutMax < c.LockoutBase {
		bad("lockout_base", "must be positive and not above LATCHKEY_LOCKOUT_MAX")
	}
	if c.VerifyTokenTTL <= 0 {
		bad("verify_token_ttl", "must be positive")
	}
	if c.ResetTokenTTL <= 0 {
		bad("reset_token_ttl", "must be positive")
	}
	if c.DeleteGrace <= 0 {
		bad("delete_grace", "must be positive")
	}
	if c.GoogleClientID != "" && c.GoogleClientSecret == "" {
		bad("google_client_secret", "is required with LATCHKEY_GOOGLE_CLIENT_ID")
	}
	seenUp := map[string]bool{}
	for i, u := range c.Upstreams {
		what := fmt.Sprintf("upstreams[%d]", i)
		if u.ID != "" {
			what = fmt.Sprintf("upstream %q", u.ID)
		}
		fail := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s: %s", what, fmt.Sprintf(format, args...)))
		}
		switch {
		case !upstreamID.MatchString(u.ID):
			fail("id must be 1–32 lowercase letters, digits, '-' or '_'")
		case seenUp[u.ID]:
			fail("id is used twice")
		}
		seenUp[u.ID] = true
		if iu, err := url.Parse(u.Issuer); err != nil || iu.Host == "" || (iu.Scheme != "https" && !isLoopbackHost(iu.Hostname())) {
			fail("issuer must be an https:// URL (http only for localhost)")
		}
		if u.ClientID == "" || u.ClientSecret == "" {
			fail("client_id and client_secret are required")
		}
	}
	if c.BrandLogoURL != "" {
		if u, err := url.Parse(c.BrandLogoURL); err != nil || u.Scheme != "https" || u.Host == "" {
			bad("brand_logo_url", "must be an https:// URL")
		}
	}
	if c.SupportEmail != "" {
		// Shown as a mailto: link on the pages and in every email: a
		// typo here would send people nowhere.
		if a, err := mail.ParseAddress(c.SupportEmail); err != nil || a.Address != c.SupportEmail || a.Name != "" {
			bad("support_email", "must be a plain email address such as support@example.com")
		}
	}
	if c.BrandColor != "" {
		if err := brand.CheckColor(c.BrandColor); err != nil {
			bad("brand_color", "%v", err) // the pages and the emails use the same rule
		}
	}
	if c.SMTPURL != "" && !strings.HasPrefix(c.SMTPURL, "smtp://") && !strings.HasPrefix(c.SMTPURL, "smtps://") {
		bad("smtp_url", "must start with smtp:// or smtps://")
	}
	return errors.Join(errs...)
}

func checkIssuer(issuer string, allowInsecure bool) string {
	if issuer == "" {
		return "must not be empty"
	}
	u, err := url.Parse(issuer)
	if err != nil {
		return fmt.Sprintf("invalid URL %q", issuer)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("%q must be an absolute http:// or https:// URL", issuer)
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return fmt.Sprintf("%q must be an absolute URL with a host", issuer)
	case u.User != nil:
		return fmt.Sprintf("%q must not contain user information", issuer)
	case u.RawQuery != "" || u.ForceQuery:
		return fmt.Sprintf("%q must not contain a query", issuer)
	case u.Fragment != "" || strings.Contains(issuer, "#"):
		return fmt.Sprintf("%q must not contain a fragment", issuer)
	case strings.HasSuffix(issuer, "/"):
		return fmt.Sprintf("%q must not end with a slash", issuer)
	}
	if u.Scheme == "http" && !allowInsecure && !isLoopbackHost(u.Hostname()) {
		return fmt.Sprintf("%q uses http on a non-local host; use https (or set LATCHKEY_ALLOW_INSECURE_ISSUER=true for testing)", issuer)
	}
	return ""
}

func isLoopbackHost(h string) bool {
	switch strings.ToLower(h) {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return false
}

func checkAddr(addr string) string {
	if addr == "" {
		return "must not be empty"
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("invalid listen address %q (use host:port or :port)", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Sprintf("invalid port in listen address %q", addr)
	}
	return ""
}

var databaseSchemes = []string{"postgres://", "postgresql://", "sqlite:", "file:"}

func checkDatabaseURL(u string) string {
	if u == "" {
		return "must not be empty"
	}
	for _, p := range databaseSchemes {
		if strings.HasPrefix(u, p) {
			return ""
		}
	}
	// Do not echo the URL: it may contain a password.
	scheme, _, found := strings.Cut(u, ":")
	if !found || strings.ContainsAny(scheme, "/@") {
		return "must start with postgres://, postgresql://, sqlite: or file:"
	}
	return fmt.Sprintf("unsupported scheme %q (use postgres://, postgresql://, sqlite: or file:)", scheme)
}

// EffectiveKeyPublishDelay returns KeyPublishDelay, or JWKSMaxAge when it
// is 0.
func (c *Config) EffectiveKeyPublishDelay() time.Duration {
	if c.KeyPublishDelay == 0 {
		return c.JWKSMaxAge
	}
	return c.KeyPublishDelay
}

// PreviousMasters are the previous secrets, newest first.
func (c *Config) PreviousMasters() [][]byte {
	var out [][]byte
	for _, p := range splitSecrets(c.PreviousSecrets) {
		out = append(out, []byte(p))
	}
	return out
}

// splitSecrets splits a comma-separated list, dropping empty entries and
// the spaces around each.
func splitSecrets(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// EnsureSecret prepares local state for commands that use the database or
// the secret. When Secret is empty it reads DataDir/secret, creating DataDir
// (0700) and the file (0600, 48 random bytes in base64url) when missing,
// sets Secret and SecretGenerated and adds a warning. When DatabaseURL is a
// sqlite: or file: URL it creates the database's parent directory (0700).
func (c *Config) EnsureSecret() error {
	if c.Secret == "" {
		if err := c.loadDevSecret(); err != nil {
			return err
		}
	}
	if dir := sqliteDir(c.DatabaseURL); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("LATCHKEY_DATABASE_URL: creating database directory: %w", err)
		}
	}
	return nil
}

func (c *Config) loadDevSecret() error {
	if c.DataDir == "" {
		return errors.New("LATCHKEY_SECRET is unset and LATCHKEY_DATA_DIR is empty: nowhere to keep a development secret")
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("LATCHKEY_DATA_DIR: creating data directory: %w", err)
	}
	path := filepath.Join(c.DataDir, "secret")
	secret, err := readSecretFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		secret, err = createSecretFile(path)
	}
	if err != nil {
		return err
	}
	c.Secret = secret
	c.SecretGenerated = true
	c.Warnings = append(c.Warnings, fmt.Sprintf(
		"LATCHKEY_SECRET is unset; a development secret is kept in %s. Set LATCHKEY_SECRET in production.", path))
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		c.Warnings = append(c.Warnings, fmt.Sprintf(
			"development secret file %s is accessible by other users (mode %s); run chmod 600 on it", path, fi.Mode().Perm()))
	}
	return nil
}

func readSecretFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		return "", fmt.Errorf("LATCHKEY_SECRET is unset and the development secret cannot be read: %w", err)
	}
	s := strings.TrimSpace(string(data))
	if len(s) < secret.MinMasterLen {
		return "", fmt.Errorf("LATCHKEY_SECRET is unset and the development secret in %s is shorter than %d characters; delete the file to generate a new one", path, secret.MinMasterLen)
	}
	return s, nil
}

// createSecretFile writes a new random secret to path without ever
// replacing an existing file: the secret is written to a temporary file
// that is then hard-linked into place, so concurrent starts agree on one
// secret and never see a partial file.
func createSecretFile(path string) (string, error) {
	buf := make([]byte, 48)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("generating development secret: %w", err)
	}
	secret := base64.RawURLEncoding.EncodeToString(buf)

	fail := func(err error) (string, error) {
		return "", fmt.Errorf("LATCHKEY_SECRET is unset and the development secret cannot be written: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".secret-*")
	if err != nil {
		return fail(err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fail(err)
	}
	if _, err := tmp.WriteString(secret + "\n"); err != nil {
		tmp.Close()
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readSecretFile(path) // another process won the race
		}
		// Hard links unsupported: fall back to exclusive create.
		f, cerr := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if cerr != nil {
			if errors.Is(cerr, fs.ErrExist) {
				return readSecretFile(path)
			}
			return fail(cerr)
		}
		_, werr := f.WriteString(secret + "\n")
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fail(werr)
		}
	}
	return secret, nil
}

// sqliteDir returns the directory of the database file named by a sqlite:
// or file: URL, or "" when there is none to create (other schemes,
// in-memory databases, the current directory).
func sqliteDir(dbURL string) string {
	var p string
	switch {
	case strings.HasPrefix(dbURL, "sqlite:"):
		p = strings.TrimPrefix(dbURL, "sqlite:")
	case strings.HasPrefix(dbURL, "file:"):
		p = strings.TrimPrefix(dbURL, "file:")
	default:
		return ""
	}
	p, query, _ := strings.Cut(p, "?")
	if strings.Contains(query, "mode=memory") {
		return ""
	}
	if rest, ok := strings.CutPrefix(p, "//"); ok {
		host, path, _ := strings.Cut(rest, "/")
		if host != "" && host != "localhost" {
			return "" // not a local file URI we understand
		}
		p = "/" + path
	}
	if unescaped, err := url.PathUnescape(p); err == nil {
		p = unescaped
	}
	if p == "" || strings.HasPrefix(p, ":memory:") {
		return ""
	}
	dir := filepath.Dir(p)
	if dir == "." || dir == "/" {
		return ""
	}
	return dir
}

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

// Logger returns a slog text or JSON logger (LogFormat) writing to w
// (os.Stderr when nil) at LogLevel.
func (c *Config) Logger(w io.Writer) *slog.Logger {
	if w == nil {
		w = os.Stderr
	}
	level, ok := logLevels[strings.ToLower(c.LogLevel)]
	if !ok {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(c.LogFormat, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
