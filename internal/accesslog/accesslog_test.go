package accesslog

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/mux"
)

func TestMiddleware(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	router := mux.NewRouter()
	router.Use(Route)
	r := Middleware(log)(router)
	router.Handle("/oauth2/token", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetClient(r.Context(), "c_123")
		w.WriteHeader(http.StatusBadRequest)
	}))
	for _, tc := range []struct {
		target, reqID string
		wantRoute     string
		wantStatus    int
		wantClient    string
		keepID        bool
	}{
		{"/oauth2/token?code=SECRETCODE&code_verifier=SECRETVERIFIER", "from-proxy.1", "/oauth2/token", 400, "c_123", true},
		{"/nowhere?access_token=SECRETTOKEN", "bad id with spaces", "other", 404, "", false},
	} {
		buf.Reset()
		req := httptest.NewRequest(http.MethodPost, tc.target, nil)
		req.Header.Set(HeaderRequestID, tc.reqID)
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		if strings.Contains(buf.String(), "SECRET") {
			t.Fatalf("the log holds the query: %s", buf.String())
		}
		var line map[string]any
		if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
			t.Fatalf("%s: %v", buf.String(), err)
		}
		id := rec.Header().Get(HeaderRequestID)
		if line["msg"] != "request" || line["method"] != "POST" || line["route"] != tc.wantRoute ||
			line["status"] != float64(tc.wantStatus) || line["request_id"] != id || id == "" {
			t.Fatalf("line %v (response id %q)", line, id)
		}
		if (id == tc.reqID) != tc.keepID {
			t.Fatalf("request id %q from %q", id, tc.reqID)
		}
		if got, _ := line["client_id"].(string); got != tc.wantClient {
			t.Fatalf("client_id %q, want %q", got, tc.wantClient)
		}
	}
}
