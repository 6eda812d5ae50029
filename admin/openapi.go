package admin

import (
	_ "embed"
	"net/http"
)

// openAPISpec describes every route of the admin listener; a test keeps it
// and the router in step.
//
//go:embed openapi.yaml
var openAPISpec []byte

// handleOpenAPI serves the spec, without authentication: it holds no data.
func handleOpenAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(openAPISpec)
	})
}
