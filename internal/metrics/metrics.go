// Package metrics holds the server's Prometheus registry and the HTTP
// middleware that counts requests per route. There is no global registry:
// each server (and each test) owns one.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/latchkey/latchkey/internal/tracing"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is one server's registry and instruments.
type Metrics struct {
	Registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	tokens   *prometheus.CounterVec
	signIns  *prometheus.CounterVec
	rejected *prometheus.CounterVec
	mailSent prometheus.Counter
	mailFail prometheus.Counter
}

// New registers the Go and process collectors and the HTTP instruments.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "latchkey_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
	}
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latchkey_tokens_issued_total", Help: "Token responses issued by grant type.",
	}, []string{"grant_type"})
	m.signIns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latchkey_sign_ins_total", Help: "Password sign-in attempts by outcome.",
	}, []string{"outcome"})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latchkey_rate_limit_rejections_total", Help: "Attempts refused by a rate limit, by limit.",
	}, []string{"limit"})
	m.mailSent = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "latchkey_mail_sent_total", Help: "Emails delivered from the outbox by this process.",
	})
	m.mailFail = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "latchkey_mail_outbox_failed_total", Help: "Emails given up on after their retries, by this process.",
	})
	reg.MustRegister(m.requests, m.latency, m.tokens, m.signIns, m.rejected, m.mailSent, m.mailFail)
	return m
}

// RateLimited counts an attempt refused by the named limit (login_ip,
// login_account, register, email, reset: a fixed set).
func (m *Metrics) RateLimited(limit string) { m.rejected.WithLabelValues(limit).Inc() }

// MailSent counts a delivered email; MailFailed one given up on.
func (m *Metrics) MailSent()   { m.mailSent.Inc() }
func (m *Metrics) MailFailed() { m.mailFail.Inc() }

// GaugeFunc registers a gauge read at every scrape (the outbox depth, the
// database pool), so its value never goes stale.
func (m *Metrics) GaugeFunc(name, help string, f func() float64) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
}

// CounterFunc registers a counter read at every scrape from a monotonic
// source (database pool waits).
func (m *Metrics) CounterFunc(name, help string, f func() float64) {
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
}

// TokenIssued counts a successful token response. Grant types are a fixed
// set, so the label cannot grow without bound.
func (m *Metrics) TokenIssued(grantType string) { m.tokens.WithLabelValues(grantType).Inc() }

// SignIn counts a sign-in attempt: success, invalid, locked, unverified
// or rate_limited.
func (m *Metrics) SignIn(outcome string) { m.signIns.WithLabelValues(outcome).Inc() }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// Middleware records every request under its route template (never the
// raw path, which would let clients create unbounded label values).
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := "other"
		if cr := mux.CurrentRoute(r); cr != nil {
			if t, err := cr.GetPathTemplate(); err == nil {
				route = t
			}
		}
		tracing.NameSpan(r, route)
		m.requests.WithLabelValues(route, r.Method, strconv.Itoa(sw.code)).Inc()
		m.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
