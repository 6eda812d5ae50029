package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/mux"
)

// Requests are counted under their route template, never the raw path,
// and the token and sign-in counters appear with their labels.
func TestMetrics(t *testing.T) {
	m := New()
	r := mux.NewRouter()
	r.Use(m.Middleware)
	r.HandleFunc("/v1/users/{id}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) })
	srv := httptest.NewServer(r)
	defer srv.Close()
	for _, id := range []string{"a", "b", "c"} {
		resp, err := http.Get(srv.URL + "/v1/users/" + id)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	m.TokenIssued("client_credentials")
	m.SignIn("success")
	m.SignIn("invalid")

	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(w.Body)
	for _, want := range []string{
		`latchkey_http_requests_total{code="404",method="GET",route="/v1/users/{id}"} 3`,
		`latchkey_tokens_issued_total{grant_type="client_credentials"} 1`,
		`latchkey_sign_ins_total{outcome="invalid"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(string(body), `/v1/users/a`) {
		t.Error("a raw path became a label")
	}
}
