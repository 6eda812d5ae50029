// Package httpx is HTTP plumbing shared by both listeners.
package httpx

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"maps"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
)

// Refuse answers, with 400 Bad Request, a request refused for malformed
// input, in the format of its route (an HTML page, an RFC 6749 error, a
// problem document). detail says what is wrong in words safe to show.
type Refuse func(w http.ResponseWriter, r *http.Request, detail string)

// maxCheckedForm bounds the form body RejectMalformedText reads. A larger
// body passes unchecked: every form handler refuses it anyway (the largest
// form limit is the protocol endpoints' 64 KiB).
const maxCheckedForm = 1 << 20

// RejectMalformedText refuses, through refuse, every request whose path,
// query parameters or form body (urlencoded or multipart) hold a NUL byte
// or invalid UTF-8. Such text is never legitimate input, and PostgreSQL
// refuses it in parameters: each one used to end as a 500 logged at
// ERROR, so anyone could flood the error log. Here it costs a debug line.
// The form body is read and put back for the handler, which parses it
// again with its own limits.
func RejectMalformedText(log *slog.Logger, refuse Refuse) func(http.Handler) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if detail := malformed(r); detail != "" {
				log.DebugContext(r.Context(), "malformed request refused", "method", r.Method, "path", r.URL.Path, "problem", detail)
				refuse(w, r, detail)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// malformed describes the first malformed part of r, or returns "".
func malformed(r *http.Request) string {
	if !ValidText(r.URL.Path) {
		return "the path contains a NUL byte or invalid UTF-8"
	}
	// Bad pairs (%zz) are skipped, as r.URL.Query does; the rest is
	// what handlers read.
	q, _ := url.ParseQuery(r.URL.RawQuery)
	if d := badValue("query parameter", q); d != "" {
		return d
	}
	// The bodies net/http parses, as it parses them: a urlencoded one for
	// POST, PUT and PATCH (ParseForm), even when the Content-Type's
	// parameters are malformed (mime.ParseMediaType then returns the type
	// with ErrInvalidMediaParameter, and ParseForm fills PostForm while
	// returning the error, which FormValue ignores); a multipart one for
	// any method (ParseMultipartForm, hence FormValue, does not look at
	// the method), only with a clean Content-Type.
	bodyMethod := r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case r.Body == nil || r.Body == http.NoBody:
		return ""
	case bodyMethod && mt == "application/x-www-form-urlencoded" && (err == nil || errors.Is(err, mime.ErrInvalidMediaParameter)):
	case mt == "multipart/form-data" && err == nil:
	default:
		return ""
	}
	body := r.Body
	buf, err := io.ReadAll(io.LimitReader(body, maxCheckedForm+1))
	if err != nil || len(buf) > maxCheckedForm {
		// Too large, or the read failed: the handler gets the whole body
		// and answers as it does for any such body.
		r.Body = readCloser{io.MultiReader(bytes.NewReader(buf), body), body}
		return ""
	}
	r.Body = readCloser{bytes.NewReader(buf), body}
	if mt == "multipart/form-data" {
		return badMultipart(buf, params["boundary"])
	}
	form, _ := url.ParseQuery(string(buf))
	return badValue("form field", form)
}

// badValue describes the first name or value of vs that is not ValidText.
func badValue(kind string, vs url.Values) string {
	for _, k := range slices.Sorted(maps.Keys(vs)) { // sorted: the same field is named every time
		if !ValidText(k) {
			return "a " + kind + " name contains a NUL byte or invalid UTF-8"
		}
		for _, v := range vs[k] {
			if !ValidText(v) {
				return "the " + kind + " " + strconv.Quote(k) + " contains a NUL byte or invalid UTF-8"
			}
		}
	}
	return ""
}

// badMultipart checks the field names, file names and (non-file) values
// of a multipart form; file contents are data, not text. A form that does
// not parse is left to the handler.
func badMultipart(body []byte, boundary string) string {
	if boundary == "" {
		return ""
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		p, err := mr.NextPart()
		if err != nil {
			return ""
		}
		name := p.FormName()
		if !ValidText(name) {
			return "a form field name contains a NUL byte or invalid UTF-8"
		}
		if p.FileName() != "" {
			if !ValidText(p.FileName()) {
				return "the file name of form field " + strconv.Quote(name) + " contains a NUL byte or invalid UTF-8"
			}
			continue
		}
		v, err := io.ReadAll(p)
		if err != nil {
			return ""
		}
		if !ValidText(string(v)) {
			return "the form field " + strconv.Quote(name) + " contains a NUL byte or invalid UTF-8"
		}
	}
}

// readCloser reads from one reader and closes the original body.
type readCloser struct {
	io.Reader
	io.Closer
}
