// Package accesslog writes one log line per HTTP request: method, route
// (the route's template, never the raw path or query, which can carry
// codes and tokens), status, duration, request id and, when a handler
// learned it, the OAuth client id. Nothing else of the request is logged.
package accesslog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/mux"
)

// HeaderRequestID carries the request id: honoured when a proxy sends a
// well-formed one, set on every response.
const HeaderRequestID = "X-Request-Id"

type ctxKey struct{}

// entry is what handlers add to the line while the request runs.
type entry struct {
	requestID string
	clientID  string
	route     string
}

// SetClient records the OAuth client a request authenticated as (or named
// and was validated for), for the access log line. Without the middleware
// it does nothing.
func SetClient(ctx context.Context, clientID string) {
	if e, ok := ctx.Value(ctxKey{}).(*entry); ok {
		e.clientID = clientID
	}
}

// RequestID returns the request's id ("" without the middleware).
func RequestID(ctx context.Context) string {
	if e, ok := ctx.Value(ctxKey{}).(*entry); ok {
		return e.requestID
	}
	return ""
}

// Middleware logs each request at info on log once it is answered. It
// wraps a whole listener, so requests that match no route are logged too
// (route "other"); Route, mounted inside the router, names the route.
func Middleware(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			e := &entry{requestID: requestID(r), route: "other"}
			w.Header().Set(HeaderRequestID, e.requestID)
			sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
			next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), ctxKey{}, e)))
			attrs := []slog.Attr{
				slog.String("method", r.Method), slog.String("route", e.route), slog.Int("status", sw.code),
				slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
				slog.String("request_id", e.requestID),
			}
			if e.clientID != "" {
				attrs = append(attrs, slog.String("client_id", e.clientID))
			}
			log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
		})
	}
}

// Route is a gorilla/mux middleware that tells the access log line which
// route matched (its template, e.g. /v1/users/{id}).
func Route(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e, ok := r.Context().Value(ctxKey{}).(*entry); ok {
			if cr := mux.CurrentRoute(r); cr != nil {
				if t, err := cr.GetPathTemplate(); err == nil {
					e.route = t
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// requestID is the incoming id when it is short and plain, else a new one.
func requestID(r *http.Request) string {
	if v := r.Header.Get(HeaderRequestID); v != "" && len(v) <= 64 && plain(v) {
		return v
	}
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func plain(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
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
