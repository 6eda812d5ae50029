package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"

	"github.com/gorilla/mux"

	"github.com/latchkey/latchkey/internal/httpx"
	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/provider/keys"
	"github.com/latchkey/latchkey/storage"
)

// problemBase prefixes every problem type (RFC 9457 §3.1.1).
const problemBase = "https://latchkey.dev/problems/"

// Problem is an RFC 9457 problem detail, the body of every error answer
// of the API (Content-Type application/problem+json).
type Problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Errors []FieldError `json:"errors,omitempty"`

	header http.Header // extra response headers (WWW-Authenticate, Allow)
}

// FieldError names one offending request field (or query parameter).
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (p *Problem) Error() string {
	if p.Detail != "" {
		return p.Title + ": " + p.Detail
	}
	return p.Title
}

// The problem types. The slug is the last segment of the type URI.
var problemTitles = map[string]struct {
	status int
	title  string
}{
	"bad-request":            {http.StatusBadRequest, "Bad request"},
	"invalid-json":           {http.StatusBadRequest, "Malformed JSON body"},
	"unauthorized":           {http.StatusUnauthorized, "Authentication required"},
	"insufficient-scope":     {http.StatusForbidden, "Insufficient scope"},
	"not-found":              {http.StatusNotFound, "Not found"},
	"method-not-allowed":     {http.StatusMethodNotAllowed, "Method not allowed"},
	"conflict":               {http.StatusConflict, "Conflict"},
	"grace-period-over":      {http.StatusConflict, "Restore grace period is over"},
	"last-key":               {http.StatusConflict, "Last signing key"},
	"built-in-role":          {http.StatusConflict, "Built-in role"},
	"precondition-failed":    {http.StatusPreconditionFailed, "Precondition failed"},
	"payload-too-large":      {http.StatusRequestEntityTooLarge, "Request body too large"},
	"unsupported-media-type": {http.StatusUnsupportedMediaType, "Unsupported media type"},
	"validation":             {http.StatusUnprocessableEntity, "Validation failed"},
	"internal":               {http.StatusInternalServerError, "Internal server error"},
	"unavailable":            {http.StatusServiceUnavailable, "Service unavailable"},
}

// problem builds a problem of the slug's type.
func problem(slug, detail string, errs ...FieldError) *Problem {
	t, ok := problemTitles[slug]
	if !ok {
		panic("admin: unknown problem type " + slug)
	}
	return &Problem{Type: problemBase + slug, Title: t.title, Status: t.status, Detail: detail, Errors: errs}
}

func problemf(slug, format string, args ...any) *Problem {
	return problem(slug, fmt.Sprintf(format, args...))
}

// invalidField is a 422 naming one field.
func invalidField(field, message string) *Problem {
	return problem("validation", field+": "+message, FieldError{Field: field, Message: message})
}

// WriteBadRequest answers a 400 bad-request problem: the refusal of a
// request whose input cannot be read at all (see httpx.RejectMalformedText).
func WriteBadRequest(w http.ResponseWriter, _ *http.Request, detail string) {
	writeProblem(w, problem("bad-request", detail))
}

func writeProblem(w http.ResponseWriter, p *Problem) {
	for k, vs := range p.header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // a detail quoting "<token>" stays readable
	_ = enc.Encode(p)
}

// toProblem maps an error of the rules or the store to its answer; an
// error it does not know is a 500 whose cause is logged, never shown.
func toProblem(log *slog.Logger, r *http.Request, err error) *Problem {
	var p *Problem
	var ve *accounts.ValidationError
	switch {
	case errors.As(err, &p):
		return p
	case errors.Is(err, accounts.ErrTaken) && errors.As(err, &ve):
		// A unique value another resource holds: 409, naming the field.
		return problem("conflict", ve.Field+": "+ve.Message, FieldError{Field: ve.Field, Message: ve.Message})
	case errors.As(err, &ve):
		return invalidField(ve.Field, ve.Message)
	case errors.Is(err, storage.ErrNotFound):
		return problem("not-found", "no such resource")
	case errors.Is(err, accounts.ErrGraceOver):
		return problem("grace-period-over", "the account was deleted too long ago to be restored")
	case errors.Is(err, accounts.ErrBuiltIn):
		return problem("built-in-role", "built-in roles (latchkey:…) can be granted and revoked, not changed or deleted")
	case errors.Is(err, keys.ErrLastKey):
		return problem("last-key", "no other key of the algorithm could sign; rotate first")
	case errors.Is(err, storage.ErrConflict):
		return problem("conflict", "the resource was changed concurrently or is in use; reload and retry")
	case errors.Is(err, storage.ErrDuplicate):
		return problem("conflict", "a resource with that name already exists")
	case errors.Is(err, storage.ErrBadCursor):
		return invalidField("after", "is not a cursor from a previous page")
	case errors.Is(err, storage.ErrUnavailable):
		log.ErrorContext(r.Context(), "admin API: database unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		p := problem("unavailable", "the database is unavailable; retry shortly")
		p.header = http.Header{"Retry-After": {httpx.RetryAfterOutage}}
		return p
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		return problem("bad-request", "request cancelled")
	}
	log.ErrorContext(r.Context(), "admin API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	return problem("internal", "the server could not complete the request; it has been logged")
}

// apiHandler adapts a handler that returns an error: nil means it wrote
// the answer, anything else becomes a problem.
func apiHandler(d Deps, fn func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			writeProblem(w, toProblem(d.Logger, r, err))
		}
	})
}

func handleNotFound() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, problemf("not-found", "no route %s %s", r.Method, r.URL.Path))
	})
}

// handleMethodNotAllowed answers 405 with the methods the path has.
func handleMethodNotAllowed(router *mux.Router) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var allowed []string
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			r2 := r.Clone(r.Context())
			r2.Method = m
			var match mux.RouteMatch
			if router.Match(r2, &match) && match.MatchErr == nil {
				allowed = append(allowed, m)
			}
		}
		p := problemf("method-not-allowed", "%s is not allowed on %s", r.Method, r.URL.Path)
		p.header = http.Header{"Allow": {strings.Join(allowed, ", ")}}
		writeProblem(w, p)
	})
}

// sortedKeys returns a map's keys in order (stable error lists).
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
