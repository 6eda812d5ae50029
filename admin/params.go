package admin

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
)

// Query parameter parsing. A value that does not parse is a 422 naming the
// parameter, like a value the rules refuse.

func qInt(q url.Values, name string, def, lo, hi int) (int, error) {
	if !q.Has(name) {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(q.Get(name)))
	if err != nil || n < lo || n > hi {
		return 0, invalidField(name, "must be an integer between "+strconv.Itoa(lo)+" and "+strconv.Itoa(hi))
	}
	return n, nil
}

func qBool(q url.Values, name string) (*bool, error) {
	if !q.Has(name) {
		return nil, nil
	}
	b, err := strconv.ParseBool(strings.TrimSpace(q.Get(name)))
	if err != nil {
		return nil, invalidField(name, "must be true or false")
	}
	return &b, nil
}

// qTime parses an RFC 3339 time or a date (midnight UTC).
func qTime(q url.Values, name string) (time.Time, error) {
	v := strings.TrimSpace(q.Get(name))
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, invalidField(name, "must be an RFC 3339 time such as 2025-01-31T12:00:00Z, or a date")
}

// qList collects a repeatable parameter whose values may also be
// comma-separated, dropping empty items.
func qList(q url.Values, name string) []string {
	var out []string
	for _, v := range q[name] {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// nextLink is the URL (path and query, relative to the server) of the
// following page: the request's own query with after replaced.
func nextLink(r *http.Request, after string) *string {
	if after == "" {
		return nil
	}
	q := r.URL.Query()
	q.Set("after", after)
	u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
	s := u.String()
	return &s
}

func pathVar(r *http.Request, name string) string { return mux.Vars(r)[name] }

// location is the path of a created resource.
func location(collection, id string) string { return collection + "/" + url.PathEscape(id) }
