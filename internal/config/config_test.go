package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// env returns a getenv func backed by m.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// flags returns a flag set with RegisterFlags applied and args parsed.
func flags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return fs
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "latchkey.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	c, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Issuer:                  "http://localhost:8080",
		HTTPAddr:                ":8080",
		AdminAddr:               "127.0.0.1:8081",
		DataDir:                 "data",
		DatabaseURL:             "sqlite:" + filepath.Join("data", "latchkey.db"),
		MigrateOnStart:          true,
		AccessTokenTTL:          time.Hour,
		RefreshTokenTTL:         720 * time.Hour,
		IDTokenTTL:              time.Hour,
		AuthCodeTTL:             10 * time.Minute,
		SessionTTL:              720 * time.Hour,
		LoginTTL:                30 * time.Minute,
		KeyRotateEvery:          720 * time.Hour,
		KeyRefreshEvery:         30 * time.Second,
		JWKSMaxAge:              5 * time.Minute,
		Argon2MemoryKiB:         19456,
		Argon2Iterations:        2,
		Argon2Parallelism:       1,
		PasswordHashConcurrency: runtime.GOMAXPROCS(0),
		PruneEvery:              time.Minute,
		ShutdownTimeout:         20 * time.Second,
		RequestTimeout:          10 * time.Second,
		OTelExporter:            "none",
		OTelSamplePercent:       100,
		PruneBatch:              500,
		LogLevel:                "info",
		LogFormat:               "text",
		AccessLog:               true,
		BrandName:               "Latchkey",
		Registration:            true,
		VerifyTokenTTL:          24 * time.Hour,
		ResetTokenTTL:           time.Hour,
		DeleteGrace:             720 * time.Hour,
		MailFrom:                "Latchkey <no-reply@localhost>",
		RateLoginIP:             "30/1m",
		RateLoginAccount:        "10/15m",
		RateRegister:            "10/1h",
		RateEmail:               "5/1h",
		RateReset:               "10/1h",
		LockoutThreshold:        5,
		LockoutBase:             time.Minute,
		LockoutMax:              time.Hour,
	}
	c.sources = nil
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}
	if got := c.EffectiveKeyPublishDelay(); got != 5*time.Minute {
		t.Errorf("EffectiveKeyPublishDelay = %s, want 5m", got)
	}
}

func TestPrecedence(t *testing.T) {
	settingsUnderTest := []struct {
		name string // setting name
		get  func(*Config) any
		def  any
		vals [3]string // file, env, flag values
		want [3]any
	}{
		{"issuer", func(c *Config) any { return c.Issuer }, "http://localhost:8080",
			[3]string{"https://file.example", "https://env.example/", "https://flag.example/x"},
			[3]any{"https://file.example", "https://env.example", "https://flag.example/x"}},
		{"access_token_ttl", func(c *Config) any { return c.AccessTokenTTL }, time.Hour,
			[3]string{"15m", "20m", "90s"},
			[3]any{15 * time.Minute, 20 * time.Minute, 90 * time.Second}},
		{"migrate", func(c *Config) any { return c.MigrateOnStart }, true,
			[3]string{"false", "true", "false"},
			[3]any{false, true, false}},
		{"db_max_open_conns", func(c *Config) any { return c.DBMaxOpenConns }, 0,
			[3]string{"5", "10", "20"},
			[3]any{5, 10, 20}},
		{"argon2_memory_kib", func(c *Config) any { return c.Argon2MemoryKiB }, uint32(19456),
			[3]string{"8192", "65536", "16384"},
			[3]any{uint32(8192), uint32(65536), uint32(16384)}},
		{"argon2_parallelism", func(c *Config) any { return c.Argon2Parallelism }, uint8(1),
			[3]string{"2", "4", "255"},
			[3]any{uint8(2), uint8(4), uint8(255)}},
	}
	layers := []struct {
		name             string
		file, env, flag  bool
		wantIdx          int // -1 = default
		configViaFlagArg bool
	}{
		{name: "default", wantIdx: -1},
		{name: "file", file: true, wantIdx: 0},
		{name: "env", env: true, wantIdx: 1},
		{name: "flag", flag: true, wantIdx: 2},
		{name: "file<env", file: true, env: true, wantIdx: 1},
		{name: "file<flag", file: true, flag: true, wantIdx: 2},
		{name: "env<flag", env: true, flag: true, wantIdx: 2},
		{name: "file<env<flag", file: true, env: true, flag: true, wantIdx: 2},
		{name: "file via --config < env", file: true, env: true, wantIdx: 1, configViaFlagArg: true},
	}
	for _, s := range settingsUnderTest {
		for _, l := range layers {
			t.Run(s.name+"/"+l.name, func(t *testing.T) {
				e := map[string]string{}
				var args []string
				if l.file {
					p := writeFile(t, "# test\n"+s.name+": \""+s.vals[0]+"\"\n")
					if l.configViaFlagArg {
						args = append(args, "--config", p)
						e["LATCHKEY_CONFIG"] = "/does/not/exist.yaml" // flag wins
					} else {
						e["LATCHKEY_CONFIG"] = p
					}
				}
				if l.env {
					e[EnvPrefix+strings.ToUpper(s.name)] = s.vals[1]
				}
				if l.flag {
					args = append(args, "--"+strings.ReplaceAll(s.name, "_", "-")+"="+s.vals[2])
				}
				c, err := Load(flags(t, args...), env(e))
				if err != nil {
					t.Fatal(err)
				}
				want := s.def
				if l.wantIdx >= 0 {
					want = s.want[l.wantIdx]
				}
				if got := s.get(c); got != want {
					t.Errorf("got %v (%T), want %v (%T)", got, got, want, want)
				}
			})
		}
	}
}

func TestBoolFlagWithoutValue(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  string
		want bool
	}{
		{nil, "false", false},
		{[]string{"--migrate"}, "false", true},
		{[]string{"--migrate=false"}, "true", false},
		{[]string{"--migrate=0"}, "", false},
	} {
		c, err := Load(flags(t, tc.args...), env(map[string]string{"LATCHKEY_MIGRATE": tc.env}))
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if c.MigrateOnStart != tc.want {
			t.Errorf("%v env=%q: MigrateOnStart = %v, want %v", tc.args, tc.env, c.MigrateOnStart, tc.want)
		}
	}
	c, err := Load(flags(t, "--allow-insecure-issuer", "--issuer", "http://idp.internal:8080/"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !c.AllowInsecureIssuer || c.Issuer != "http://idp.internal:8080" {
		t.Errorf("got AllowInsecureIssuer=%v Issuer=%q", c.AllowInsecureIssuer, c.Issuer)
	}
}

func TestInvalidEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string // substrings of the error
	}{
		{"bad duration", map[string]string{"LATCHKEY_ACCESS_TOKEN_TTL": "abc"},
			[]string{`LATCHKEY_ACCESS_TOKEN_TTL: invalid duration "abc"`}},
		{"negative duration", map[string]string{"LATCHKEY_REFRESH_TOKEN_TTL": "-5m"},
			[]string{"LATCHKEY_REFRESH_TOKEN_TTL: must be greater than 0"}},
		{"zero ttl", map[string]string{"LATCHKEY_AUTH_CODE_TTL": "0"},
			[]string{"LATCHKEY_AUTH_CODE_TTL"}},
		{"negative rotate", map[string]string{"LATCHKEY_KEY_ROTATE_EVERY": "-1h"},
			[]string{"LATCHKEY_KEY_ROTATE_EVERY: must not be negative"}},
		{"bad int", map[string]string{"LATCHKEY_PRUNE_BATCH": "lots"},
			[]string{`LATCHKEY_PRUNE_BATCH: invalid integer "lots"`}},
		{"zero prune batch", map[string]string{"LATCHKEY_PRUNE_BATCH": "0"},
			[]string{"LATCHKEY_PRUNE_BATCH: must be greater than 0"}},
		{"negative int", map[string]string{"LATCHKEY_DB_MAX_OPEN_CONNS": "-1"},
			[]string{"LATCHKEY_DB_MAX_OPEN_CONNS: must be 0 or more"}},
		{"negative hash concurrency", map[string]string{"LATCHKEY_PASSWORD_HASH_CONCURRENCY": "-2"},
			[]string{"LATCHKEY_PASSWORD_HASH_CONCURRENCY"}},
		{"uint8 out of range", map[string]string{"LATCHKEY_ARGON2_PARALLELISM": "256"},
			[]string{`LATCHKEY_ARGON2_PARALLELISM: value "256" out of range (0 to 255)`}},
		{"uint8 zero", map[string]string{"LATCHKEY_ARGON2_PARALLELISM": "0"},
			[]string{"LATCHKEY_ARGON2_PARALLELISM: must be between 1 and 255"}},
		{"uint32 negative", map[string]string{"LATCHKEY_ARGON2_ITERATIONS": "-1"},
			[]string{`LATCHKEY_ARGON2_ITERATIONS: value "-1" out of range`}},
		{"uint32 zero", map[string]string{"LATCHKEY_ARGON2_ITERATIONS": "0"},
			[]string{"LATCHKEY_ARGON2_ITERATIONS: must be at least 1"}},
		{"argon2 memory too small", map[string]string{"LATCHKEY_ARGON2_MEMORY_KIB": "512"},
			[]string{"LATCHKEY_ARGON2_MEMORY_KIB: must be at least 1024"}},
		{"bad bool", map[string]string{"LATCHKEY_MIGRATE": "maybe"},
			[]string{`LATCHKEY_MIGRATE: invalid boolean "maybe"`}},
		{"issuer not a URL", map[string]string{"LATCHKEY_ISSUER": "not a url"},
			[]string{"LATCHKEY_ISSUER:"}},
		{"issuer relative", map[string]string{"LATCHKEY_ISSUER": "/oidc"},
			[]string{"LATCHKEY_ISSUER:", "absolute"}},
		{"issuer ftp", map[string]string{"LATCHKEY_ISSUER": "ftp://example.com"},
			[]string{"LATCHKEY_ISSUER:"}},
		{"issuer query", map[string]string{"LATCHKEY_ISSUER": "https://example.com/?a=b"},
			[]string{"LATCHKEY_ISSUER:", "query"}},
		{"issuer fragment", map[string]string{"LATCHKEY_ISSUER": "https://example.com#x"},
			[]string{"LATCHKEY_ISSUER:", "fragment"}},
		{"http issuer on remote host", map[string]string{"LATCHKEY_ISSUER": "http://idp.example.com"},
			[]string{"LATCHKEY_ISSUER:", "LATCHKEY_ALLOW_INSECURE_ISSUER"}},
		{"short secret", map[string]string{"LATCHKEY_SECRET": "too-short"},
			[]string{"LATCHKEY_SECRET: must be at least 32 characters (got 9)"}},
		{"short previous secret", map[string]string{"LATCHKEY_PREVIOUS_SECRETS": "an-old-secret-of-enough-length-0123, short"},
			[]string{"LATCHKEY_PREVIOUS_SECRETS: entry 2 must be at least 32 characters (got 5)"}},
		{"previous secret is the current one", map[string]string{"LATCHKEY_SECRET": "the-current-secret-0123456789abcdef",
			"LATCHKEY_PREVIOUS_SECRETS": "the-current-secret-0123456789abcdef"},
			[]string{"LATCHKEY_PREVIOUS_SECRETS: entry 1 is the current secret"}},
		{"shutdown delay beyond the timeout", map[string]string{"LATCHKEY_SHUTDOWN_DELAY": "30s", "LATCHKEY_SHUTDOWN_TIMEOUT": "10s"},
			[]string{"LATCHKEY_SHUTDOWN_DELAY: must be less than shutdown_timeout"}},
		{"unknown log level", map[string]string{"LATCHKEY_LOG_LEVEL": "verbose"},
			[]string{`LATCHKEY_LOG_LEVEL: unknown level "verbose"`}},
		{"bad rate limit", map[string]string{"LATCHKEY_RATE_LOGIN_IP": "lots"}, []string{"LATCHKEY_RATE_LOGIN_IP"}},
		{"bad trusted proxy", map[string]string{"LATCHKEY_TRUSTED_PROXIES": "10.0.0.0/99"}, []string{"LATCHKEY_TRUSTED_PROXIES"}},
		{"negative lockout", map[string]string{"LATCHKEY_LOCKOUT_THRESHOLD": "-1"}, []string{"LATCHKEY_LOCKOUT_THRESHOLD"}},
		{"lockout base above max", map[string]string{"LATCHKEY_LOCKOUT_BASE": "2h"}, []string{"LATCHKEY_LOCKOUT_BASE"}},
		{"http logo", map[string]string{"LATCHKEY_BRAND_LOGO_URL": "http://x.example/logo.png"}, []string{"LATCHKEY_BRAND_LOGO_URL"}},
		{"support email without @", map[string]string{"LATCHKEY_SUPPORT_EMAIL": "support"}, []string{"LATCHKEY_SUPPORT_EMAIL"}},
		{"support email with a name", map[string]string{"LATCHKEY_SUPPORT_EMAIL": "Help <help@example.com>"}, []string{"LATCHKEY_SUPPORT_EMAIL"}},
		{"css injection color", map[string]string{"LATCHKEY_BRAND_COLOR": "red;}body{"}, []string{"LATCHKEY_BRAND_COLOR"}},
		// Issue 9.10: a named color passed here, then the server died at
		// start in the mail templates. The same rule now applies everywhere.
		{"named color", map[string]string{"LATCHKEY_BRAND_COLOR": "red"},
			[]string{`LATCHKEY_BRAND_COLOR: "red" must be a hex color #rgb or #rrggbb`}},
		{"five hex digits", map[string]string{"LATCHKEY_BRAND_COLOR": "#12345"}, []string{"LATCHKEY_BRAND_COLOR:"}},
		{"hex with alpha", map[string]string{"LATCHKEY_BRAND_COLOR": "#2f5beaff"}, []string{"LATCHKEY_BRAND_COLOR:"}},
		{"color without #", map[string]string{"LATCHKEY_BRAND_COLOR": "2f5bea"}, []string{"LATCHKEY_BRAND_COLOR:"}},
		{"bad smtp scheme", map[string]string{"LATCHKEY_SMTP_URL": "http://mail"}, []string{"LATCHKEY_SMTP_URL"}},
		{"zero reset ttl", map[string]string{"LATCHKEY_RESET_TOKEN_TTL": "0s"}, []string{"LATCHKEY_RESET_TOKEN_TTL"}},
		{"unknown log format", map[string]string{"LATCHKEY_LOG_FORMAT": "xml"},
			[]string{`LATCHKEY_LOG_FORMAT: unknown format "xml"`}},
		{"bad database scheme", map[string]string{"LATCHKEY_DATABASE_URL": "mysql://u:hunter2@h/db"},
			[]string{`LATCHKEY_DATABASE_URL: unsupported scheme "mysql"`}},
		{"key refresh too slow", map[string]string{"LATCHKEY_KEY_REFRESH_EVERY": "2m"},
			[]string{"LATCHKEY_KEY_REFRESH_EVERY: must be greater than 0 and at most 1m"}},
		{"key refresh zero", map[string]string{"LATCHKEY_KEY_REFRESH_EVERY": "0s"},
			[]string{"LATCHKEY_KEY_REFRESH_EVERY"}},
		{"bad http addr", map[string]string{"LATCHKEY_HTTP_ADDR": "8080"},
			[]string{"LATCHKEY_HTTP_ADDR:"}},
		{"same addrs", map[string]string{"LATCHKEY_HTTP_ADDR": ":9000", "LATCHKEY_ADMIN_ADDR": ":9000"},
			[]string{"LATCHKEY_ADMIN_ADDR: must differ"}},
		{"short metrics token", map[string]string{"LATCHKEY_METRICS_TOKEN": "hunter2"},
			[]string{"LATCHKEY_METRICS_TOKEN: must be at least 16 characters"}},
		{"metrics token with a space", map[string]string{"LATCHKEY_METRICS_TOKEN": "hunter2 hunter2 hunter2"},
			[]string{"LATCHKEY_METRICS_TOKEN:"}},
		{"several problems", map[string]string{"LATCHKEY_SECRET": "x", "LATCHKEY_LOG_FORMAT": "xml"},
			[]string{"LATCHKEY_SECRET:", "LATCHKEY_LOG_FORMAT:"}},
		{"several parse errors", map[string]string{"LATCHKEY_ID_TOKEN_TTL": "1 hour", "LATCHKEY_PRUNE_EVERY": "soon"},
			[]string{"LATCHKEY_ID_TOKEN_TTL:", "LATCHKEY_PRUNE_EVERY:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(nil, env(tc.env))
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks a password: %q", err)
			}
		})
	}
}

func TestValidValues(t *testing.T) {
	for _, e := range []map[string]string{
		{"LATCHKEY_ISSUER": "https://idp.example.com/tenant"},
		{"LATCHKEY_ISSUER": "http://127.0.0.1:9999"},
		{"LATCHKEY_ISSUER": "http://[::1]:9999/"},
		{"LATCHKEY_ISSUER": "http://idp.test", "LATCHKEY_ALLOW_INSECURE_ISSUER": "true"},
		{"LATCHKEY_DATABASE_URL": "postgres://u:p@localhost/db?sslmode=disable"},
		{"LATCHKEY_DATABASE_URL": "postgresql://localhost/db"},
		{"LATCHKEY_DATABASE_URL": "file:x.db?_pragma=busy_timeout(5000)"},
		{"LATCHKEY_SECRET": strings.Repeat("s", 32)},
		{"LATCHKEY_LOG_LEVEL": "DEBUG", "LATCHKEY_LOG_FORMAT": "json"},
		{"LATCHKEY_KEY_REFRESH_EVERY": "1m", "LATCHKEY_KEY_ROTATE_EVERY": "0", "LATCHKEY_KEY_PUBLISH_DELAY": "1s"},
		{"LATCHKEY_ARGON2_MEMORY_KIB": "8192", "LATCHKEY_ARGON2_ITERATIONS": "1", "LATCHKEY_ARGON2_PARALLELISM": "4"},
		{"LATCHKEY_PASSWORD_HASH_CONCURRENCY": "3", "LATCHKEY_ACCESS_TOKEN_TTL": " 2h "},
		{"LATCHKEY_METRICS_TOKEN": "c2NyYXBlLXRva2VuLTEyMw=="},
		{"LATCHKEY_BRAND_COLOR": "#2f5bea"},
		{"LATCHKEY_BRAND_COLOR": " #0A7 "},
	} {
		if _, err := Load(nil, env(e)); err != nil {
			t.Errorf("%v: %v", e, err)
		}
	}
}

func TestFlagErrorsNameEnvAndFlag(t *testing.T) {
	_, err := Load(flags(t, "--access-token-ttl=abc", "--argon2-parallelism", "300"), env(nil))
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{
		`LATCHKEY_ACCESS_TOKEN_TTL (flag --access-token-ttl): invalid duration "abc"`,
		`LATCHKEY_ARGON2_PARALLELISM (flag --argon2-parallelism): value "300" out of range`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	// A validation error on a flag-set value also says where it came from.
	_, err = Load(flags(t, "--log-level=loud"), env(nil))
	if err == nil || !strings.Contains(err.Error(), "LATCHKEY_LOG_LEVEL (flag --log-level)") {
		t.Errorf("got %v", err)
	}
}

func TestConfigFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		want    []string
	}{
		{"unknown key", "issuer: https://a.example\nacess_token_ttl: 1h\n",
			[]string{`line 2: unknown key "acess_token_ttl"`, "latchkey.yaml"}},
		{"env-style key", "LATCHKEY_LOG_LEVEL: debug\n",
			[]string{`unknown key "LATCHKEY_LOG_LEVEL" (did you mean "log_level"?)`}},
		{"config key not allowed", "config: other.yaml\n",
			[]string{`unknown key "config"`}},
		{"bad value", "access_token_ttl: 3600\n",
			[]string{`LATCHKEY_ACCESS_TOKEN_TTL (access_token_ttl in config file`, `line 1): invalid duration "3600"`}},
		{"validation names file", "secret: short\n",
			[]string{"LATCHKEY_SECRET (secret in config file", "must be at least 32 characters"}},
		{"non-scalar value", "issuer: [a, b]\n",
			[]string{"LATCHKEY_ISSUER (issuer in config file", "expected a single value"}},
		{"duplicate key", "log_level: debug\nlog_level: info\n",
			[]string{`key "log_level" already set on line 1`}},
		{"not a mapping", "- a\n- b\n",
			[]string{"LATCHKEY_CONFIG", "expected a mapping"}},
		{"syntax error", "issuer: [\n",
			[]string{"LATCHKEY_CONFIG", "latchkey.yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, tc.content)
			_, err := Load(nil, env(map[string]string{"LATCHKEY_CONFIG": p}))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestConfigFileAccepted(t *testing.T) {
	for _, content := range []string{
		"",
		"# only a comment\n",
		"log_level: debug\nsecret:\n", // null leaves the default
		"defaults: &d 2h\naccess_token_ttl: *d\n",
	} {
		p := writeFile(t, content)
		c, err := Load(nil, env(map[string]string{"LATCHKEY_CONFIG": p}))
		if strings.HasPrefix(content, "defaults:") {
			if err == nil || !strings.Contains(err.Error(), `unknown key "defaults"`) {
				t.Errorf("%q: got %v", content, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", content, err)
			continue
		}
		if c.ConfigFile != p {
			t.Errorf("ConfigFile = %q, want %q", c.ConfigFile, p)
		}
	}
}

func TestMissingConfigFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(nil, env(map[string]string{"LATCHKEY_CONFIG": missing}))
	if err == nil || !strings.Contains(err.Error(), "LATCHKEY_CONFIG") || !strings.Contains(err.Error(), missing) {
		t.Errorf("env: got %v", err)
	}
	_, err = Load(flags(t, "--config", missing), env(nil))
	if err == nil || !strings.Contains(err.Error(), "LATCHKEY_CONFIG (flag --config)") {
		t.Errorf("flag: got %v", err)
	}
}

func TestEnsureSecret(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	e := env(map[string]string{"LATCHKEY_DATA_DIR": dir})

	c1, err := Load(nil, e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("Load touched the filesystem: %v", err)
	}
	if err := c1.EnsureSecret(); err != nil {
		t.Fatal(err)
	}
	if len(c1.Secret) < 32 || !c1.SecretGenerated {
		t.Fatalf("Secret=%q SecretGenerated=%v", c1.Secret, c1.SecretGenerated)
	}
	if err := c1.Validate(); err != nil {
		t.Errorf("generated secret does not validate: %v", err)
	}
	path := filepath.Join(dir, "secret")
	if len(c1.Warnings) != 1 || !strings.Contains(c1.Warnings[0], "LATCHKEY_SECRET") || !strings.Contains(c1.Warnings[0], path) {
		t.Errorf("Warnings = %q", c1.Warnings)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode %v, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v, want 0700", di.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("data dir holds %d entries, want only the secret", len(entries))
	}

	c2, err := Load(nil, e)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.EnsureSecret(); err != nil {
		t.Fatal(err)
	}
	if c2.Secret != c1.Secret || !c2.SecretGenerated || len(c2.Warnings) != 1 {
		t.Errorf("second load: Secret equal=%v SecretGenerated=%v Warnings=%q", c2.Secret == c1.Secret, c2.SecretGenerated, c2.Warnings)
	}

	// An explicit secret is used as is and nothing is generated.
	dir3 := filepath.Join(t.TempDir(), "other")
	c3, err := Load(nil, env(map[string]string{"LATCHKEY_DATA_DIR": dir3, "LATCHKEY_SECRET": strings.Repeat("k", 40)}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c3.EnsureSecret(); err != nil {
		t.Fatal(err)
	}
	if c3.SecretGenerated || len(c3.Warnings) != 0 || c3.Secret != strings.Repeat("k", 40) {
		t.Errorf("explicit secret: %+v", c3)
	}
	if _, err := os.Stat(filepath.Join(dir3, "secret")); !os.IsNotExist(err) {
		t.Errorf("secret file written although LATCHKEY_SECRET is set")
	}
	// ...but the default SQLite database directory is created.
	if _, err := os.Stat(dir3); err != nil {
		t.Errorf("database directory not created: %v", err)
	}
}

func TestEnsureSecretRejectsShortFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(nil, env(map[string]string{"LATCHKEY_DATA_DIR": dir}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureSecret(); err == nil || !strings.Contains(err.Error(), "LATCHKEY_SECRET") {
		t.Errorf("got %v", err)
	}
}

func TestSQLiteDir(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"sqlite:data/latchkey.db", "data"},
		{"sqlite:/var/lib/latchkey/db.sqlite", "/var/lib/latchkey"},
		{"sqlite:latchkey.db", ""},
		{"sqlite::memory:", ""},
		{"file:a/b/c.db?_pragma=foreign_keys(1)", "a/b"},
		{"file:///srv/x/y.db", "/srv/x"},
		{"file://localhost/srv/x/y.db", "/srv/x"},
		{"file:db?mode=memory&cache=shared", ""},
		{"file:my%20dir/x.db", "my dir"},
		{"postgres://localhost/db", ""},
	} {
		if got := sqliteDir(tc.url); got != filepath.FromSlash(tc.want) {
			t.Errorf("sqliteDir(%q) = %q, want %q", tc.url, got, tc.want)
		}
	}
}

func TestSettingsCoverEveryField(t *testing.T) {
	skip := map[string]bool{"SecretGenerated": true, "Warnings": true, "Upstreams": true}
	var c Config
	base := reflect.ValueOf(&c).Elem()
	byAddr := map[uintptr]string{}
	for _, s := range settings() {
		byAddr[reflect.ValueOf(s.field(&c)).Pointer()] = s.name
	}
	covered := map[string]bool{}
	typ := base.Type()
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		if !f.IsExported() || skip[f.Name] {
			continue
		}
		name, ok := byAddr[base.Field(i).Addr().Pointer()]
		if !ok {
			t.Errorf("Config.%s has no setting", f.Name)
			continue
		}
		if covered[name] {
			t.Errorf("setting %s points at an already covered field", name)
		}
		covered[name] = true
	}
	if len(byAddr) != len(settings()) {
		t.Errorf("%d settings but %d distinct fields", len(settings()), len(byAddr))
	}

	seen := map[string]bool{}
	for _, s := range Settings() {
		if seen[s.Name] {
			t.Errorf("duplicate setting %s", s.Name)
		}
		seen[s.Name] = true
		if s.Env != "LATCHKEY_"+strings.ToUpper(s.Name) || s.Flag != strings.ReplaceAll(s.Name, "_", "-") || s.Help == "" {
			t.Errorf("bad setting %+v", s)
		}
	}
	for _, n := range []string{"config", "issuer", "allow_insecure_issuer", "migrate", "database_url"} {
		if !seen[n] {
			t.Errorf("missing setting %s", n)
		}
	}
}

func TestRegisterFlags(t *testing.T) {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	RegisterFlags(fs)
	for _, s := range Settings() {
		f := fs.Lookup(s.Flag)
		if f == nil {
			t.Errorf("no flag --%s", s.Flag)
			continue
		}
		if !strings.Contains(f.Usage, s.Env) {
			t.Errorf("--%s usage does not mention %s", s.Flag, s.Env)
		}
	}
	usage := fs.FlagUsages()
	for _, w := range []string{"--migrate ", "(default true)", "--access-token-ttl duration", `--issuer string`, `(default "http://localhost:8080")`} {
		if !strings.Contains(usage, w) {
			t.Errorf("usage does not contain %q:\n%s", w, usage)
		}
	}
	if strings.Contains(usage, "--migrate string") || strings.Contains(usage, `[="true"]`) {
		t.Errorf("bool flags shown as strings:\n%s", usage)
	}
}

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	c := &Config{LogLevel: "warn", LogFormat: "json"}
	l := c.Logger(&buf)
	l.Info("hidden")
	l.Warn("shown", "k", 1)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("got %q", buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil || m["msg"] != "shown" {
		t.Errorf("got %q (%v)", lines[0], err)
	}

	buf.Reset()
	c = &Config{LogLevel: "debug", LogFormat: "text"}
	c.Logger(&buf).Debug("dbg")
	if !strings.Contains(buf.String(), "msg=dbg") {
		t.Errorf("text debug: got %q", buf.String())
	}
}

func TestUpstreams(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, fmt.Sprintf("up%d.yaml", len(body)))
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write(`upstreams:
  - id: corp
    name: Corp SSO
    issuer: https://sso.corp.example
    client_id: latchkey
    client_secret: s3cret
    hosted_domains: [corp.example]
    claims: {username: upn}
`)
	c, err := Load(nil, env(map[string]string{"LATCHKEY_CONFIG": good,
		"LATCHKEY_GOOGLE_CLIENT_ID": "gid", "LATCHKEY_GOOGLE_CLIENT_SECRET": "gsecret", "LATCHKEY_GOOGLE_HOSTED_DOMAINS": "a.example, b.example"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Upstreams) != 2 {
		t.Fatalf("upstreams = %+v", c.Upstreams)
	}
	corp, g := c.Upstreams[0], c.Upstreams[1]
	if corp.Claims.Username != "upn" || corp.Claims.Name != "name" || corp.Claims.HostedDomain != "hd" ||
		strings.Join(corp.Scopes, " ") != "openid email profile" || corp.HostedDomains[0] != "corp.example" {
		t.Errorf("corp = %+v", corp)
	}
	if g.ID != "google" || g.Issuer != "https://accounts.google.com" || strings.Join(g.HostedDomains, ",") != "a.example,b.example" {
		t.Errorf("google = %+v", g)
	}

	bad := []struct{ name, yaml, want string }{
		{"unknown key", "upstreams:\n  - id: x\n    issuer: https://x.example\n    client_id: a\n    client_secret: b\n    secret: c\n", "field secret not found"},
		{"bad id", "upstreams:\n  - id: Not Valid\n    issuer: https://x.example\n    client_id: a\n    client_secret: b\n", "id must be"},
		{"http issuer", "upstreams:\n  - id: x\n    issuer: http://x.example\n    client_id: a\n    client_secret: b\n", "issuer must be"},
		{"no secret", "upstreams:\n  - id: x\n    issuer: https://x.example\n    client_id: a\n", "client_secret are required"},
		{"twice", "upstreams:\n  - {id: x, issuer: 'https://x.example', client_id: a, client_secret: b}\n  - {id: x, issuer: 'https://y.example', client_id: a, client_secret: b}\n", "used twice"},
		{"not a list", "upstreams: yes\n", "expected a list"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(nil, env(map[string]string{"LATCHKEY_CONFIG": write(tc.yaml)}))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := Load(nil, env(map[string]string{"LATCHKEY_GOOGLE_CLIENT_ID": "gid"})); err == nil ||
		!strings.Contains(err.Error(), "LATCHKEY_GOOGLE_CLIENT_SECRET") {
		t.Fatalf("google without secret: %v", err)
	}
}

// brand_color in a YAML file is named as such, and an unquoted "#2f5bea"
// (a YAML comment, so no value at all) is not silently ignored.
func TestBrandColorInConfigFile(t *testing.T) {
	for content, want := range map[string]string{
		"brand_color: red\n":     `LATCHKEY_BRAND_COLOR (brand_color in config file`,
		"brand_color: #2f5bea\n": `quote it: brand_color: "#2f5bea"`,
	} {
		_, err := Load(nil, env(map[string]string{"LATCHKEY_CONFIG": writeFile(t, content)}))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want it to contain %q", content, err, want)
		}
	}
	c, err := Load(nil, env(map[string]string{"LATCHKEY_CONFIG": writeFile(t, "brand_color: \"#2f5bea\" # blue\n")}))
	if err != nil || c.BrandColor != "#2f5bea" {
		t.Fatalf("quoted color: %v, %+v", err, c)
	}
}
