package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/admin"
	"github.com/latchkey/latchkey/internal/testdb"
)

// Both listeners get the same, non-zero timeouts: without them one client
// can hold an admin connection open forever by sending its headers (or
// body) one byte at a time.
func TestServersHaveTimeouts(t *testing.T) {
	servers := newServers(http.NotFoundHandler(), http.NotFoundHandler())
	if len(servers) != 2 {
		t.Fatalf("%d servers, want public and admin", len(servers))
	}
	public := servers[0]
	for i, name := range []string{"public", "admin"} {
		srv := servers[i]
		for _, f := range []struct {
			field     string
			got, want time.Duration
		}{
			{"ReadHeaderTimeout", srv.ReadHeaderTimeout, public.ReadHeaderTimeout},
			{"ReadTimeout", srv.ReadTimeout, public.ReadTimeout},
			{"WriteTimeout", srv.WriteTimeout, public.WriteTimeout},
			{"IdleTimeout", srv.IdleTimeout, public.IdleTimeout},
		} {
			if f.got <= 0 || f.got != f.want {
				t.Errorf("%s listener %s = %s, want the public listener's %s (> 0)", name, f.field, f.got, f.want)
			}
		}
		if srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes != public.MaxHeaderBytes {
			t.Errorf("%s listener MaxHeaderBytes = %d, want %d", name, srv.MaxHeaderBytes, public.MaxHeaderBytes)
		}
	}
}

// A CPU profile streams for `seconds`, longer than the write timeout:
// net/http/pprof extends the connection's write deadline by that much, so
// the timeout does not cut it off. The write timeout is shortened here
// only to keep the test short.
func TestProfileOutlivesWriteTimeout(t *testing.T) {
	srv := newServers(http.NotFoundHandler(), admin.NewServer(admin.Deps{Profiling: true}))[1]
	srv.WriteTimeout = 500 * time.Millisecond
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = srv
	ts.Start()
	defer ts.Close()

	resp, err := http.Get(ts.URL + "/debug/pprof/profile?seconds=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || len(body) == 0 {
		t.Fatalf("profile: %d, %d bytes, %v: %s", resp.StatusCode, len(body), err, body)
	}
}

// With LATCHKEY_METRICS_TOKEN set, /metrics wants that bearer token.
func TestEndToEndMetricsToken(t *testing.T) {
	const token = "scrape-token-0123456789abcdef"
	s := startServer(t, testdb.SQLite(t), map[string]string{"LATCHKEY_METRICS_TOKEN": token})
	for _, tc := range []struct {
		name, auth string
		status     int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"wrong token", "Bearer scrape-token-0123456789abcdeX", http.StatusUnauthorized},
		{"prefix of the token", "Bearer scrape-token", http.StatusUnauthorized},
		{"basic scheme", "Basic " + token, http.StatusUnauthorized},
		{"right token", "Bearer " + token, http.StatusOK},
		{"right token, lower-case scheme", "bearer " + token, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, s.admin+"/metrics", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("GET /metrics with %q = %d, want %d", tc.auth, resp.StatusCode, tc.status)
			}
			if tc.status == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
	// Health probes stay open: they are not the metrics.
	resp, err := http.Get(s.admin + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz with a metrics token: %d", resp.StatusCode)
	}
}

// Issue 9.10: LATCHKEY_BRAND_COLOR=red passed the configuration check and
// the server then died at start in the mail templates. Now the
// configuration refuses it, naming the setting, before anything is opened
// (the database file is never created), with every colour syntax the
// pages and emails could not use.
func TestServeRefusesBadBrandColorAtConfig(t *testing.T) {
	for _, color := range []string{"red", "#2f5beaff", "rgb(0,0,255)"} {
		t.Run(color, func(t *testing.T) {
			c := newCLIEnv(t)
			dbFile := filepath.Join(c.env["LATCHKEY_DATA_DIR"], "db.sqlite")
			c.env["LATCHKEY_BRAND_COLOR"] = color
			c.env["LATCHKEY_HTTP_ADDR"] = "127.0.0.1:0"
			c.env["LATCHKEY_ADMIN_ADDR"] = "127.0.0.1:0"
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var out, errOut bytes.Buffer
			err := run(ctx, []string{"serve"}, func(k string) string { return c.env[k] }, strings.NewReader(""), &out, &errOut)
			if err == nil || ctx.Err() != nil {
				t.Fatalf("serve ran (err %v); stderr %s", err, errOut.String())
			}
			want := "LATCHKEY_BRAND_COLOR: " + strconv.Quote(color) + " must be a hex color #rgb or #rrggbb"
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("err = %q, want it to start with %q", err, want)
			}
			if _, serr := os.Stat(dbFile); serr == nil {
				t.Errorf("the database was created: serve got past the configuration")
			}
		})
	}
}
