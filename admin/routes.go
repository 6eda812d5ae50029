package admin

import (
	"net/http"

	"github.com/gorilla/mux"
)

// routes lists every route of the admin listener.
func routes(r *mux.Router, d Deps) {
	r.Handle("/healthz", handleHealthz()).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/readyz", handleReadyz(d.DB)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/metrics", d.Metrics).Methods(http.MethodGet)
}
