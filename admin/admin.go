// Package admin serves the admin listener: health and readiness probes,
// Prometheus metrics and (in later work) the admin REST API. It is never
// mounted on the public listener.
package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/gorilla/mux"
)

// Pinger reports whether the database answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Deps are the admin server's collaborators.
type Deps struct {
	DB      Pinger
	Metrics http.Handler // promhttp handler of the server's registry
	// Profiling serves Go's pprof profiles under /debug/pprof/.
	Profiling bool
}

// NewServer returns the admin listener's handler.
func NewServer(d Deps) http.Handler {
	if d.Metrics == nil {
		d.Metrics = http.NotFoundHandler()
	}
	r := mux.NewRouter()
	routes(r, d)
	return r
}

func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// handleReadyz answers 200 only while the database is reachable, so a
// load balancer stops sending traffic to a replica that lost it.
func handleReadyz(db Pinger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := db.Ping(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "database": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "database": "ok"})
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
