package provider

import "testing"

// Malformed requests are answered in the format of the route: JSON where
// a program calls, the error page where a browser is sent.
func TestAnswersJSON(t *testing.T) {
	for path, want := range map[string]bool{
		pathToken:                     true,
		pathIntrospect:                true,
		pathRevoke:                    true,
		pathPAR:                       true,
		pathUserinfo:                  true,
		pathDiscovery:                 true,
		pathJWKS:                      true,
		"/oauth2/unknown":             true,
		"/account/me":                 true,
		"/account/me/sessions/x":      true,
		pathAuthorize:                 false,
		PathResume:                    false,
		pathEndSession:                false,
		"/login":                      false,
		"/account":                    false,
		"/account/profile":            false,
		"/account/mex":                false,
		"/static/app.css":             false,
		"/federation/google/callback": false,
		"/userinfo/x":                 false,
	} {
		if got := AnswersJSON(path); got != want {
			t.Errorf("AnswersJSON(%q) = %v, want %v", path, got, want)
		}
	}
}
