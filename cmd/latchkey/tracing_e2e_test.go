package main

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"golang.org/x/oauth2"
	"google.golang.org/protobuf/proto"

	"github.com/latchkey/latchkey/internal/mail/mailtest"
	"github.com/latchkey/latchkey/internal/testdb"
)

// otlpReceiver is an in-process OTLP/HTTP trace collector.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []receivedSpan
}

type receivedSpan struct {
	name, traceID, parentID string
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	raw, _ := io.ReadAll(body)
	var req coltrace.ExportTraceServiceRequest
	if r.URL.Path != "/v1/traces" || proto.Unmarshal(raw, &req) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				o.spans = append(o.spans, receivedSpan{s.Name, hex.EncodeToString(s.TraceId), hex.EncodeToString(s.ParentSpanId)})
			}
		}
	}
	o.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

// waitFor polls until pred holds for some received span.
func (o *otlpReceiver) waitFor(t *testing.T, what string, pred func(receivedSpan) bool) receivedSpan {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		o.mu.Lock()
		for _, s := range o.spans {
			if pred(s) {
				o.mu.Unlock()
				return s
			}
		}
		names := make([]string, 0, len(o.spans))
		for _, s := range o.spans {
			names = append(names, s.name)
		}
		o.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no span %s among %d received: %v", what, len(names), names)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEndToEndTracing: with LATCHKEY_OTEL_EXPORTER=otlphttp a sign-in
// reaches an OTLP collector as spans of its HTTP requests (named after the
// route), SQL statements and password check; a caller's W3C traceparent is
// continued; a reset email's delivery has its span too.
func TestEndToEndTracing(t *testing.T) {
	rcv := &otlpReceiver{}
	col := httptest.NewServer(rcv)
	defer col.Close()
	smtp := mailtest.NewServer(t)
	s := startServer(t, testdb.SQLite(t), map[string]string{
		"LATCHKEY_OTEL_EXPORTER": "otlphttp", "LATCHKEY_OTEL_ENDPOINT": col.URL, "LATCHKEY_SMTP_URL": smtp.URL()})
	ctx := context.Background()
	const pw = "tia's long password"
	s.createUser("tia", pw)
	rp := s.createClient("--name", "App", "--redirect-uri", callback, "--first-party")
	conf := &oauth2.Config{ClientID: rp.ID, ClientSecret: rp.Secret, RedirectURL: callback, Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: s.issuer + "/oauth2/authorize", TokenURL: s.issuer + "/oauth2/token"}}
	pkce := oauth2.GenerateVerifier()
	cb := newBrowser(t, callback).signIn(conf.AuthCodeURL(randString(), oauth2.S256ChallengeOption(pkce)), "tia", pw)
	if _, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(pkce)); err != nil {
		t.Fatal(err)
	}
	login := rcv.waitFor(t, `"POST /login"`, func(s receivedSpan) bool { return s.name == "POST /login" })
	rcv.waitFor(t, "password.verify in the sign-in's trace", func(s receivedSpan) bool {
		return s.name == "password.verify" && s.traceID == login.traceID
	})
	rcv.waitFor(t, "an SQL statement in the sign-in's trace", func(s receivedSpan) bool {
		return strings.HasPrefix(s.name, "db ") && s.traceID == login.traceID
	})
	rcv.waitFor(t, `"POST /oauth2/token"`, func(s receivedSpan) bool { return s.name == "POST /oauth2/token" })

	// A caller's trace context is continued.
	const traceID, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, _ := http.NewRequest(http.MethodGet, s.issuer+"/.well-known/openid-configuration", nil)
	req.Header.Set("traceparent", "00-"+traceID+"-"+parent+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	rcv.waitFor(t, "continuing the caller's traceparent", func(s receivedSpan) bool {
		return s.traceID == traceID && s.parentID == parent
	})

	// Mail delivery.
	if p := newBrowser(t, callback).submit(s.issuer, "/forgot-password", url.Values{"email": {"tia@example.com"}}); p.status != http.StatusOK {
		t.Fatalf("forgot-password: %d", p.status)
	}
	smtp.Wait(t, "tia@example.com", "Reset your password", 15*time.Second)
	rcv.waitFor(t, "mail.send", func(s receivedSpan) bool { return s.name == "mail.send" })
}
