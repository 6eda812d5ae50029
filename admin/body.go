package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/httpx"
	"github.com/latchkey/latchkey/storage"
)

// Request body limits.
const (
	maxBody       = 64 << 10 // JSON bodies
	maxImportBody = 10 << 20 // JSON Lines imports
)

// readBody reads the whole body, at most limit bytes (413 beyond).
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, problemf("payload-too-large", "the body must be at most %d bytes", limit)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, problemf("payload-too-large", "the body must be at most %d bytes", limit)
	}
	if err != nil {
		return nil, problemf("bad-request", "reading the body: %v", err)
	}
	return b, nil
}

// checkMediaType requires the request's Content-Type to be one of types
// (parameters such as charset are allowed); "+json" also accepts any
// structured-syntax JSON type (application/merge-patch+json).
func checkMediaType(r *http.Request, types ...string) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct != "" && err == nil {
		for _, t := range types {
			if mt == t || (t == "+json" && strings.HasSuffix(mt, "+json")) {
				return nil
			}
		}
	}
	want := strings.ReplaceAll(strings.Join(types, " or "), " or +json", "")
	if ct == "" {
		return problemf("unsupported-media-type", "the body needs a Content-Type: %s", want)
	}
	return problemf("unsupported-media-type", "Content-Type %q is not accepted; send %s", ct, want)
}

// decodeJSON decodes a JSON request body into v: application/json, at most
// 64 KiB, one value, no unknown fields. An empty body is an error unless
// optional (v is then left as it is).
func decodeJSON(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	body, err := readBody(w, r, maxBody)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return nil
		}
		return problem("invalid-json", "a JSON request body is required")
	}
	if err := checkMediaType(r, "application/json", "+json"); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return problem("invalid-json", "unexpected data after the JSON value")
	}
	// PostgreSQL refuses NUL in text: a "\u0000" escape is refused here,
	// naming its field, instead of failing in the store as a 500.
	if field, bad := httpx.InvalidJSONText(body); bad {
		if field == "" {
			return problem("bad-request", "the body "+httpx.TextRule)
		}
		return problem("bad-request", field+": "+httpx.TextRule, FieldError{Field: field, Message: httpx.TextRule})
	}
	return nil
}

var unknownFieldRe = regexp.MustCompile(`unknown field "([^"]*)"`)

// jsonProblem describes a decoding error as a 400.
func jsonProblem(err error) *Problem {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return problemf("invalid-json", "the body is not valid JSON (byte %d): %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return problemf("invalid-json", "the body must be a JSON object, not %s", typ.Value)
		}
		msg := "must be " + jsonKind(typ.Type.Kind().String())
		return problem("invalid-json", field+": "+msg, FieldError{Field: field, Message: msg})
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return problem("invalid-json", "the body is not valid JSON: it ends too early")
	}
	if m := unknownFieldRe.FindStringSubmatch(err.Error()); m != nil {
		return problem("invalid-json", fmt.Sprintf("unknown field %q", m[1]), namedField(m[1], "unknown field")...)
	}
	return problemf("invalid-json", "%s", strings.TrimPrefix(err.Error(), "json: "))
}

// namedField is the errors entry for a field, none for the key "" (an
// entry with an empty field name would name nothing).
func namedField(field, message string) []FieldError {
	if field == "" {
		return nil
	}
	return []FieldError{{Field: field, Message: message}}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	case "ptr":
		return "a value of another type"
	}
	if strings.HasPrefix(goKind, "int") || strings.HasPrefix(goKind, "uint") || strings.HasPrefix(goKind, "float") {
		return "a number"
	}
	return "a value of another type"
}

// ---- partial updates ----

// patch is a decoded PATCH body: the fields present, each as raw JSON.
// A field set to null clears it where that means something ("" for an
// optional text, the server default for a lifetime) and is a 422 where it
// does not.
type patch map[string]json.RawMessage

// decodePatch reads a JSON object for PATCH. Fields in protected (with the
// reason they cannot be changed here) are 422s naming them; fields neither
// allowed nor protected are 400s, as unknown fields are everywhere.
func decodePatch(w http.ResponseWriter, r *http.Request, allowed []string, protected map[string]string) (patch, error) {
	var p patch
	if err := decodeJSON(w, r, &p, false); err != nil {
		return nil, err
	}
	if p == nil {
		return nil, problem("invalid-json", "the body must be a JSON object, not null")
	}
	ok := map[string]bool{}
	for _, f := range allowed {
		ok[f] = true
	}
	var unknown, prot []FieldError
	for _, k := range sortedKeys(p) {
		switch why, isProt := protected[k]; {
		case ok[k]:
		case isProt:
			prot = append(prot, FieldError{Field: k, Message: why})
		default:
			unknown = append(unknown, FieldError{Field: k, Message: "unknown field"})
		}
	}
	if len(unknown) > 0 {
		// The key "" is unknown too, but an errors entry must name a field.
		named := slices.DeleteFunc(slices.Clone(unknown), func(fe FieldError) bool { return fe.Field == "" })
		return nil, problem("invalid-json", fmt.Sprintf("unknown field %q", unknown[0].Field), named...)
	}
	if len(prot) > 0 {
		return nil, problem("validation", fmt.Sprintf("%s: %s", prot[0].Field, prot[0].Message), prot...)
	}
	return p, nil
}

func (p patch) has(name string) bool { _, ok := p[name]; return ok }

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// value decodes field name into dst; false when absent.
func (p patch) value(name string, dst any) (bool, error) {
	raw, ok := p[name]
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			msg := "must be " + jsonKind(typ.Type.Kind().String())
			return true, problem("invalid-json", name+": "+msg, FieldError{Field: name, Message: msg})
		}
		return true, problemf("invalid-json", "%s: %v", name, err)
	}
	return true, nil
}

// str returns a text field; null is "" when clearable, else a 422.
func (p patch) str(name string, clearable bool) (*string, error) {
	raw, ok := p[name]
	if !ok {
		return nil, nil
	}
	if isNull(raw) {
		if !clearable {
			return nil, invalidField(name, "must not be null")
		}
		s := ""
		return &s, nil
	}
	var s string
	if _, err := p.value(name, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// boolean returns a boolean field; null is a 422.
func (p patch) boolean(name string) (*bool, error) {
	raw, ok := p[name]
	if !ok {
		return nil, nil
	}
	if isNull(raw) {
		return nil, invalidField(name, "must not be null")
	}
	var b bool
	if _, err := p.value(name, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// strings returns a list of strings; null is the empty list.
func (p patch) strings(name string) (*[]string, error) {
	raw, ok := p[name]
	if !ok {
		return nil, nil
	}
	out := []string{}
	if isNull(raw) {
		return &out, nil
	}
	if _, err := p.value(name, &out); err != nil {
		return nil, err
	}
	if out == nil {
		out = []string{}
	}
	return &out, nil
}

// duration returns a Go duration string ("1h30m"); null is 0.
func (p patch) duration(name string) (*time.Duration, error) {
	s, err := p.str(name, true)
	if err != nil || s == nil {
		return nil, err
	}
	var d time.Duration
	if *s != "" {
		if d, err = time.ParseDuration(*s); err != nil {
			return nil, invalidField(name, "must be a duration such as \"1h\" or \"15m\"")
		}
	}
	return &d, nil
}

// address returns the structured address; null clears it. Unknown keys
// are refused, so that a typo is not silently dropped.
func (p patch) address(name string) (*storage.Address, error) {
	raw, ok := p[name]
	if !ok {
		return nil, nil
	}
	if isNull(raw) {
		return &storage.Address{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var a storage.Address
	if err := dec.Decode(&a); err != nil {
		return nil, invalidField(name, "must be an object of formatted, street_address, locality, region, postal_code and country strings")
	}
	return &a, nil
}

// object returns a JSON object field as its bytes (the rules check it is
// an object); null clears it.
func (p patch) object(name string) (*[]byte, error) {
	raw, ok := p[name]
	if !ok {
		return nil, nil
	}
	b := []byte(raw)
	if isNull(raw) {
		b = nil
	}
	return &b, nil
}

// stringMap returns an object of strings; null is the empty map.
func (p patch) stringMap(name string) (*map[string]string, error) {
	raw, ok := p[name]
	if !ok {
		return nil, nil
	}
	m := map[string]string{}
	if isNull(raw) {
		return &m, nil
	}
	if _, err := p.value(name, &m); err != nil {
		return nil, err
	}
	return &m, nil
}
