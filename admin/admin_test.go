package admin_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/admin"
	"github.com/latchkey/latchkey/internal/metrics"
	"github.com/latchkey/latchkey/internal/testdb"
)

func TestProbesAndMetrics(t *testing.T) {
	store := testdb.OpenStore(t, testdb.SQLite(t))
	m := metrics.New()
	srv := httptest.NewServer(admin.NewServer(admin.Deps{DB: store, Metrics: m.Handler()}))
	defer srv.Close()

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		path   string
		status int
		want   string
	}{
		{"/healthz", 200, `"status":"ok"`},
		{"/readyz", 200, `"database":"ok"`},
		{"/metrics", 200, "go_goroutines"},
		{"/nope", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			status, body := get(tt.path)
			if status != tt.status || !strings.Contains(body, tt.want) {
				t.Fatalf("GET %s = %d %s", tt.path, status, body)
			}
		})
	}

	// A replica that lost its database is not ready, but still alive.
	_ = store.Close()
	status, body := get("/readyz")
	var v map[string]string
	_ = json.Unmarshal([]byte(body), &v)
	if status != http.StatusServiceUnavailable || v["status"] != "unavailable" {
		t.Fatalf("readyz with the database closed = %d %s", status, body)
	}
	if status, _ := get("/healthz"); status != 200 {
		t.Fatalf("healthz = %d", status)
	}
}
