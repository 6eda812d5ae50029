package admin

import (
	"net/http"
	"net/http/pprof"

	"github.com/gorilla/mux"
)

// routes lists every route of the admin listener.
func routes(r *mux.Router, d Deps) {
	r.Handle("/healthz", handleHealthz()).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/readyz", handleReadyz(d.DB)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/metrics", d.Metrics).Methods(http.MethodGet)
	if d.Profiling {
		r.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		r.HandleFunc("/debug/pprof/profile", pprof.Profile)
		r.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		r.HandleFunc("/debug/pprof/trace", pprof.Trace)
		r.PathPrefix("/debug/pprof/").HandlerFunc(pprof.Index)
	}
}
