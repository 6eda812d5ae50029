// Command latchkey-bench is a closed-loop HTTP load generator for a running
// Latchkey: c workers each send requests (or, for authcode, whole sign-ins)
// back to back for a fixed duration after a warm-up, and it reports the
// throughput, latency percentiles and errors.
//
//	latchkey-bench -issuer http://127.0.0.1:18080 -scenario cc-opaque \
//	    -client-id ID -client-secret SECRET -c 16 -d 10s
//
// Scenarios: discovery, jwks, cc-opaque, cc-jwt, introspect, authcode.
// scripts/bench.sh sets up a server and runs all of them.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "latchkey-bench:", err)
		os.Exit(1)
	}
}

// config is the parsed command line.
type config struct {
	issuer         string
	scenario       string
	mfaUsers       int
	concurrency    int
	duration       time.Duration
	warmup         time.Duration
	timeout        time.Duration
	clientID       string
	clientSecret   string
	scope          string
	publicClientID string
	redirectURI    string
	username       string
	password       string
	jsonOut        bool
	adminURL       string
	adminQueries   string
	// targets are base URLs of replicas that serve issuer; when set,
	// requests to the issuer go to them in turn.
	targets []string
}

var scenarioNames = []string{"discovery", "jwks", "cc-opaque", "cc-jwt", "introspect", "authcode", "authcode-totp", "admin-search"}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("latchkey-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.issuer, "issuer", "http://127.0.0.1:18080", "issuer URL of the Latchkey to load")
	fs.StringVar(&cfg.scenario, "scenario", "discovery", "one of "+strings.Join(scenarioNames, ", "))
	fs.IntVar(&cfg.concurrency, "c", 16, "concurrent workers (closed loop)")
	fs.DurationVar(&cfg.duration, "d", 10*time.Second, "measured duration")
	fs.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "warm-up before measuring (results discarded)")
	fs.DurationVar(&cfg.timeout, "timeout", 30*time.Second, "timeout of one HTTP request")
	fs.StringVar(&cfg.clientID, "client-id", "", "confidential client (cc-opaque, cc-jwt, introspect)")
	fs.StringVar(&cfg.clientSecret, "client-secret", "", "its secret")
	fs.StringVar(&cfg.scope, "scope", "api", "scope requested with client_credentials")
	fs.StringVar(&cfg.publicClientID, "public-client-id", "", "first-party public client (authcode)")
	fs.StringVar(&cfg.redirectURI, "redirect-uri", "http://127.0.0.1:1/cb", "its registered redirect URI (never contacted)")
	fs.StringVar(&cfg.username, "username", "", "user(s) to sign in as, comma-separated, used in turn (authcode)")
	fs.StringVar(&cfg.password, "password", "", "their password (authcode)")
	fs.BoolVar(&cfg.jsonOut, "json", false, "print the result as one JSON object")
	fs.IntVar(&cfg.mfaUsers, "mfa-users", 1000, "authcode-totp: accounts to create and enrol (each signs in about once per 30 s)")
	fs.StringVar(&cfg.adminURL, "admin", "http://127.0.0.1:18081", "admin listener URL (admin-search)")
	fs.StringVar(&cfg.adminQueries, "admin-queries", "q=a1", "admin-search: |-separated query strings for GET /v1/users, used in turn")
	targets := fs.String("targets", "", "comma-separated base URLs of replicas serving -issuer (one database): requests to the issuer are spread over them in turn, as a load balancer without stickiness would")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	for _, t := range strings.Split(*targets, ",") {
		if t = strings.TrimRight(strings.TrimSpace(t), "/"); t != "" {
			u, err := url.Parse(t)
			if err != nil || u.Host == "" {
				return nil, fmt.Errorf("-targets: %q is not a base URL", t)
			}
			cfg.targets = append(cfg.targets, u.Host)
		}
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	cfg.issuer = strings.TrimRight(cfg.issuer, "/")
	if cfg.concurrency < 1 {
		return nil, errors.New("-c must be at least 1")
	}
	if cfg.duration <= 0 || cfg.warmup < 0 {
		return nil, errors.New("-d must be positive and -warmup not negative")
	}
	need := func(names ...string) error {
		vals := map[string]string{"client-id": cfg.clientID, "client-secret": cfg.clientSecret,
			"public-client-id": cfg.publicClientID, "redirect-uri": cfg.redirectURI,
			"username": cfg.username, "password": cfg.password}
		for _, n := range names {
			if vals[n] == "" {
				return fmt.Errorf("scenario %s needs -%s", cfg.scenario, n)
			}
		}
		return nil
	}
	switch cfg.scenario {
	case "discovery", "jwks":
	case "cc-opaque", "cc-jwt", "introspect", "admin-search":
		if err := need("client-id", "client-secret"); err != nil {
			return nil, err
		}
	case "authcode":
		if err := need("public-client-id", "redirect-uri", "username", "password"); err != nil {
			return nil, err
		}
	case "authcode-totp":
		if err := need("public-client-id", "redirect-uri", "password", "client-id", "client-secret"); err != nil {
			return nil, err
		}
		if cfg.mfaUsers < 1 {
			return nil, errors.New("-mfa-users must be at least 1")
		}
	default:
		return nil, fmt.Errorf("unknown scenario %q (want one of %s)", cfg.scenario, strings.Join(scenarioNames, ", "))
	}
	return cfg, nil
}

// run parses args, prepares the scenario (checking it works once), loads
// the server and writes the report to stdout.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := parseFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	transport := newTransport(cfg.concurrency)
	defer transport.CloseIdleConnections()
	var rt http.RoundTripper = transport
	if len(cfg.targets) > 0 {
		iu, err := url.Parse(cfg.issuer)
		if err != nil {
			return fmt.Errorf("-issuer: %w", err)
		}
		rt = &spread{base: transport, from: iu.Host, to: cfg.targets}
	}
	hc := &http.Client{
		Transport: rt,
		Timeout:   cfg.timeout,
		// Redirects are followed by hand where a scenario expects them.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	op, err := newScenario(ctx, cfg, hc)
	if err != nil {
		return fmt.Errorf("setting up %s: %w", cfg.scenario, err)
	}
	// One operation up front: a misconfigured run fails in a second with
	// the reason instead of after the whole duration with only errors.
	if err := op(ctx); err != nil {
		return fmt.Errorf("%s: first request failed: %w", cfg.scenario, err)
	}
	res := load(ctx, cfg.concurrency, cfg.warmup, cfg.duration, op)
	if err := ctx.Err(); err != nil {
		return err
	}
	rep := newReport(cfg, res)
	if cfg.jsonOut {
		enc := json.NewEncoder(stdout)
		return enc.Encode(rep)
	}
	return rep.writeText(stdout)
}

// spread sends each request for host from to the next of to, keeping the
// Host header (and so cookies, Origin checks and the issuer) as they are:
// what a round-robin load balancer in front of replicas does.
type spread struct {
	base http.RoundTripper
	from string
	to   []string
	n    atomic.Uint64
}

func (s *spread) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != s.from {
		return s.base.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	r.Host = s.from
	r.URL.Host = s.to[s.n.Add(1)%uint64(len(s.to))]
	return s.base.RoundTrip(r)
}

// newTransport is a keep-alive transport with an idle pool big enough that
// no worker ever has to dial between requests.
func newTransport(concurrency int) *http.Transport {
	return &http.Transport{
		Proxy: nil, // a benchmark talks to the server directly
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   max(2*concurrency, 100),
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}
}
