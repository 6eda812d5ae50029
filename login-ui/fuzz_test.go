package loginui

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzLocalPath: the `next` parameter check. What it lets through is the
// input itself, a path of this site: one leading "/", no backslash, no
// tab or line break; and the Location header http.Redirect makes of it
// (which cleans dot segments) still points at this site.
func FuzzLocalPath(f *testing.F) {
	for _, s := range []string{
		"/account", "/account?x=1#top", "", "account", "//evil.example", "/\\evil.example",
		"/./\\evil.example/x", "https://evil.example/", "/a\r\nSet-Cookie: x", "/..//evil.example",
		"/.//evil.example", "/%2F%2Fevil.example", "/\t/evil.example", "/%5C%5Cevil.example", "/a/../..//b",
		"/\x00", "/\u3000/evil.example", "/?next=//evil.example", "/#//evil.example", "/..\\..\\evil",
	} {
		f.Add(s)
	}
	base, _ := url.Parse("https://idp.example/login")
	f.Fuzz(func(t *testing.T, in string) {
		out := localPath(in)
		if out == "" {
			return
		}
		if out != in {
			t.Fatalf("localPath(%q) = %q: it must pass its input through or refuse it", in, out)
		}
		if !strings.HasPrefix(out, "/") || strings.HasPrefix(out, "//") || strings.ContainsAny(out, "\\\t\r\n") {
			t.Fatalf("localPath(%q) = %q", in, out)
		}
		w := httptest.NewRecorder()
		http.Redirect(w, httptest.NewRequest("GET", "/login", nil), out, http.StatusSeeOther)
		loc := w.Header().Get("Location")
		if strings.HasPrefix(loc, "//") || strings.ContainsAny(loc, "\\\t\r\n") {
			t.Fatalf("localPath(%q): Location %q", in, loc)
		}
		u, err := url.Parse(loc)
		if err != nil {
			t.Fatalf("localPath(%q): Location %q: %v", in, loc, err)
		}
		if got := base.ResolveReference(u); got.Scheme != "https" || got.Host != "idp.example" || got.User != nil {
			t.Fatalf("localPath(%q): Location %q leads to %s", in, loc, got)
		}
	})
}
