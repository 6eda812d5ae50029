package provider

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
)

// formPostScript submits the response form as soon as the page is parsed.
// It is the page's only script, and its Content-Security-Policy allows
// exactly this text by its hash, so no inline handler (fosite's default
// uses onload) and nothing injected could run.
const formPostScript = `document.forms[0].submit();`

// formPostScriptSource is formPostScript's CSP hash source, computed from
// the constant the template embeds, so the two cannot drift apart.
var formPostScriptSource = cspHashSource(formPostScript)

// formPostTemplate replaces fosite's response_mode=form_post page. Without
// JavaScript, the <noscript> button sends the same form.
var formPostTemplate = template.Must(template.New("form_post").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Returning to the application</title>
</head>
<body>
<form method="post" action="{{ .RedirURL }}">
{{- range $key, $values := .Parameters }}{{ range $values }}
<input type="hidden" name="{{ $key }}" value="{{ . }}">
{{- end }}{{ end }}
<noscript><p>JavaScript is turned off: continue to the application.</p><button type="submit">Continue</button></noscript>
</form>
<script>` + formPostScript + `</script>
</body>
</html>
`))

func cspHashSource(script string) string {
	sum := sha256.Sum256([]byte(script))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// setFormPostHeaders gives the form_post page the headers of every other
// page (login-ui's render) with a CSP that allows only its own script and
// a form posting to the redirect URI's origin. no-referrer keeps the
// authorization request's URL from the client's server.
func setFormPostHeaders(h http.Header, redirect *url.URL) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src "+formPostScriptSource+
		"; form-action "+formActionSource(redirect)+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
}

var (
	cspScheme = regexp.MustCompile(`^[a-z][a-z0-9+.-]*$`)
	cspHost   = regexp.MustCompile(`^[A-Za-z0-9.-]+$`)
	cspPort   = regexp.MustCompile(`^[0-9]{1,5}$`)
)

// formActionSource is the CSP source expression for the redirect URI's
// origin. CSP cannot name an IPv6 literal or an opaque origin (a native
// app's custom scheme), so those get their scheme alone; anything that
// would not be a well-formed source gets 'none' rather than a header an
// attacker could add directives to.
func formActionSource(u *url.URL) string {
	if u == nil || !cspScheme.MatchString(u.Scheme) {
		return "'none'"
	}
	host, port := u.Hostname(), u.Port()
	if host == "" || !cspHost.MatchString(host) || (port != "" && !cspPort.MatchString(port)) {
		return u.Scheme + ":"
	}
	if port != "" {
		return u.Scheme + "://" + host + ":" + port
	}
	return u.Scheme + "://" + host
}
