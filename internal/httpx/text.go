package httpx

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// TextRule is how an answer words ValidText for a named field.
const TextRule = "must not contain NUL characters or invalid UTF-8"

// ValidText reports whether s is text every store accepts: valid UTF-8
// without NUL bytes. PostgreSQL refuses anything else in a text parameter,
// and no name, id, token or form field of Latchkey needs it.
func ValidText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// InvalidJSONText finds the first string of the JSON document body, key or
// value, that is not ValidText, and returns where it is (display_name,
// rate_limits[0].match; "" for a document that is just a string). Decoded
// JSON strings are always valid UTF-8 (the decoder replaces bad bytes), so
// in practice this finds "\u0000" escapes. A body that is not JSON reports
// nothing: the caller's decoder explains that better.
func InvalidJSONText(body []byte) (path string, found bool) {
	type frame struct {
		path   string
		array  bool
		index  int
		key    string
		hasKey bool // an object frame has read the key of its next value
	}
	var stack []*frame
	here := func() string { // the path of the value about to be read
		if len(stack) == 0 {
			return ""
		}
		f := stack[len(stack)-1]
		if f.array {
			return f.path + "[" + strconv.Itoa(f.index) + "]"
		}
		if f.path == "" {
			return f.key
		}
		return f.path + "." + f.key
	}
	done := func() { // a value of the innermost container has been read
		if len(stack) == 0 {
			return
		}
		if f := stack[len(stack)-1]; f.array {
			f.index++
		} else {
			f.hasKey = false
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false // the end, or not JSON
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				stack = append(stack, &frame{path: here(), array: t == '['})
			default:
				stack = stack[:len(stack)-1]
				done()
			}
		case string:
			if f := len(stack) - 1; f >= 0 && !stack[f].array && !stack[f].hasKey {
				stack[f].key, stack[f].hasKey = t, true
				if !ValidText(t) {
					return here(), true
				}
				continue
			}
			if !ValidText(t) {
				return here(), true
			}
			done()
		default:
			done()
		}
	}
}
