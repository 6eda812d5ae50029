package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = ms(i + 1) // 1..100 ms
	}
	cases := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value", []time.Duration{ms(7)}, 99, ms(7)},
		{"one value p0", []time.Duration{ms(7)}, 0, ms(7)},
		{"p50 of 1..100", hundred, 50, ms(50)},
		{"p90 of 1..100", hundred, 90, ms(90)},
		{"p99 of 1..100", hundred, 99, ms(99)},
		{"p99.9 of 1..100 is the max", hundred, 99.9, ms(100)},
		{"p100 is the max", hundred, 100, ms(100)},
		{"p1 is the min", hundred, 1, ms(1)},
		// nearest rank: ceil(0.5*4)=2nd, ceil(0.75*4)=3rd, ceil(0.76*4)=4th
		{"p50 of 4", []time.Duration{ms(1), ms(2), ms(3), ms(4)}, 50, ms(2)},
		{"p75 of 4", []time.Duration{ms(1), ms(2), ms(3), ms(4)}, 75, ms(3)},
		{"p76 of 4", []time.Duration{ms(1), ms(2), ms(3), ms(4)}, 76, ms(4)},
	}
	for _, c := range cases {
		if got := percentile(c.sorted, c.p); got != c.want {
			t.Errorf("%s: percentile(p=%v) = %v, want %v", c.name, c.p, got, c.want)
		}
	}
}

func TestHiddenInputs(t *testing.T) {
	a := &authCode{reInput: regexp.MustCompile(`(?is)<input\b[^>]*>`), reAttr: regexp.MustCompile(`(?is)\b(name|value)\s*=\s*"([^"]*)"`)}
	page := `<form method="post" action="/login">
<input type="hidden" name="csrf_token" value="a-b_c">
<input value="x&amp;y" type="hidden" name="challenge">
<input id="login" name="login" type="text" required value="">`
	got := a.hiddenInputs(page)
	if got["csrf_token"] != "a-b_c" || got["challenge"] != "x&y" || got["login"] != "" {
		t.Fatalf("hiddenInputs = %v", got)
	}
}

// TestRunAgainstFakeServer drives a fake token endpoint for a short while
// and checks the counts and the JSON report add up.
func TestRunAgainstFakeServer(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			fmt.Fprintf(w, `{"issuer":%q,"authorization_endpoint":"%[1]s/oauth2/authorize","token_endpoint":"%[1]s/oauth2/token","jwks_uri":"%[1]s/jwks"}`, srv.URL)
		case "/oauth2/token":
			if id, secret, ok := r.BasicAuth(); !ok || id != "svc" || secret != "s3cret" || r.PostFormValue("grant_type") != "client_credentials" {
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, `{"error":"invalid_client"}`)
				return
			}
			fmt.Fprint(w, `{"access_token":"opaque.token","token_type":"bearer"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	var out bytes.Buffer
	args := []string{"-issuer", srv.URL, "-scenario", "cc-opaque", "-client-id", "svc", "-client-secret", "s3cret",
		"-c", "1", "-d", "300ms", "-warmup", "50ms", "-json"}
	if err := run(context.Background(), args, &out); err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if rep.OK == 0 || rep.Errors != 0 || rep.RPS <= 0 || rep.P50MS <= 0 || rep.P99MS < rep.P50MS || rep.MaxMS < rep.P99MS {
		t.Fatalf("report %+v", rep)
	}

	// A wrong secret fails on the first request, with the server's answer.
	args[7] = "wrong"
	err := run(context.Background(), args, &out)
	if err == nil || !regexp.MustCompile(`HTTP 401.*invalid_client`).MatchString(err.Error()) {
		t.Fatalf("wrong secret: %v", err)
	}
}
