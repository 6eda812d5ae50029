package loginui

import (
	"strings"
	"sync"

	"github.com/medama-io/go-useragent"
	"github.com/medama-io/go-useragent/agents"
)

// Devices name a session's browser for people: "Chrome on Linux" rather
// than a User-Agent string. The parser (medama-io/go-useragent, a trie
// built from embedded data, about 10 MiB) is built at the first account
// page, not at start: a server whose people never open it never pays.
type Devices struct {
	once sync.Once
	p    *useragent.Parser
}

// NewDevices returns the namer; the parser is built on first use.
func NewDevices() *Devices { return &Devices{} }

var osNames = map[agents.OS]string{agents.OSMacOS: "macOS"}

// Name is "Browser on OS", the part that is known, or the product token
// of a program ("curl"), or "" when nothing can be told.
func (d *Devices) Name(ua string) string {
	if ua == "" {
		return ""
	}
	d.once.Do(func() { d.p = useragent.NewParser() })
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
