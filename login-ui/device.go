package loginui

import (
	"strings"

	"github.com/medama-io/go-useragent"
	"github.com/medama-io/go-useragent/agents"
)

// Devices name a session's browser for people: "Chrome on Linux" rather
// than a User-Agent string. The parser (medama-io/go-useragent, a trie
// built once from embedded data) is shared by every request.
type Devices struct{ p *useragent.Parser }

// NewDevices builds the parser.
func NewDevices() *Devices { return &Devices{p: useragent.NewParser()} }

var osNames = map[agents.OS]string{agents.OSMacOS: "macOS"}

// Name is "Browser on OS", the part that is known, or the product token
// of a program ("curl"), or "" when nothing can be told.
func (d *Devices) Name(ua string) string {
	if ua == "" {
		return ""
	}
	a := d.p.Parse(ua)
	browser, os := string(a.Browser()), string(a.OS())
	if n, ok := osNames[a.OS()]; ok {
		os = n
	}
	switch {
	case browser != "" && os != "":
		return browser + " on " + os
	case browser != "":
		return browser
	case os != "":
		return os
	}
	// A program, not a browser: its product token.
	tok, _, _ := strings.Cut(ua, " ")
	tok, _, _ = strings.Cut(tok, "/")
	if tok == "" || tok == "Mozilla" {
		return ""
	}
	return tok
}
