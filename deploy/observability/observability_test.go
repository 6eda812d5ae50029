// Package observability_test checks the Grafana dashboard and the
// Prometheus rules in this directory without Grafana or promtool: the
// dashboard is valid JSON with the variables and layout Grafana needs, its
// runtime and HTTP metrics are the ones internal/metrics registers, and
// every alert has a severity, a summary, a description and a promtool unit
// test that fires it. scripts/check-observability.sh (make
// observability-check) runs this and promtool.
package observability_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"go.yaml.in/yaml/v3"

	"github.com/latchkey/latchkey/internal/metrics"
)

type gridPos struct{ X, Y, W, H int }

type panel struct {
	ID         *int            `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	GridPos    *gridPos        `json:"gridPos"`
	Datasource json.RawMessage `json:"datasource"`
	Targets    []struct {
		Datasource json.RawMessage `json:"datasource"`
		Expr       string          `json:"expr"`
		RefID      string          `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's panels
}

type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b) {
		var v any
		t.Fatalf("grafana-dashboard.json is not valid JSON: %v", json.Unmarshal(b, &v))
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	return d
}

const dsRef = `{"type":"prometheus","uid":"${datasource}"}`

func sameJSON(raw json.RawMessage, want string) bool {
	var a, b any
	return json.Unmarshal(raw, &a) == nil && json.Unmarshal([]byte(want), &b) == nil &&
		mustJSON(a) == mustJSON(b)
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestDashboard(t *testing.T) {
	d := readDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Error("the dashboard needs a uid and a title")
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d: want 36 or later (the datasource-variable references)", d.SchemaVersion)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Name == "datasource" && string(v.Query) != `"prometheus"` {
			t.Errorf("the datasource variable's query is %s, want \"prometheus\"", v.Query)
		}
	}
	for name, typ := range map[string]string{"datasource": "datasource", "job": "query", "instance": "query"} {
		if vars[name] != typ {
			t.Errorf("template variable %q: type %q, want %q", name, vars[name], typ)
		}
	}

	var all []panel
	for _, p := range d.Panels {
		all = append(all, p)
		all = append(all, p.Panels...)
	}
	ids := map[int]string{}
	var boxes []panel
	for _, p := range all {
		if p.ID == nil {
			t.Errorf("panel %q has no id", p.Title)
			continue
		}
		if prev, dup := ids[*p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", prev, p.Title, *p.ID)
		}
		ids[*p.ID] = p.Title
		g := p.GridPos
		if g == nil || g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v is missing or outside the 24-column grid", p.Title, g)
			continue
		}
		boxes = append(boxes, p)
		if p.Type == "row" {
			continue
		}
		if p.Title == "" || len(p.Targets) == 0 {
			t.Errorf("panel %d: needs a title and at least one query", *p.ID)
		}
		if !sameJSON(p.Datasource, dsRef) {
			t.Errorf("panel %q: datasource %s, want %s", p.Title, p.Datasource, dsRef)
		}
		refs := map[string]bool{}
		for _, q := range p.Targets {
			if strings.TrimSpace(q.Expr) == "" || q.RefID == "" || refs[q.RefID] {
				t.Errorf("panel %q: every query needs an expression and its own refId", p.Title)
			}
			refs[q.RefID] = true
			if !sameJSON(q.Datasource, dsRef) {
				t.Errorf("panel %q, query %s: datasource %s, want %s", p.Title, q.RefID, q.Datasource, dsRef)
			}
		}
	}
	for i, a := range boxes {
		for _, b := range boxes[i+1:] {
			ga, gb := a.GridPos, b.GridPos
			if ga.X < gb.X+gb.W && gb.X < ga.X+ga.W && ga.Y < gb.Y+gb.H && gb.Y < ga.Y+ga.H {
				t.Errorf("panels %q and %q overlap", a.Title, b.Title)
			}
		}
	}
}

// metricName finds the series names in a PromQL expression.
var metricName = regexp.MustCompile(`\b(?:latchkey|go|process)_[a-z0-9_]+\b`)

// histogramSuffix maps a histogram's series back to its family name.
var histogramSuffix = regexp.MustCompile(`_(bucket|count|sum)$`)

// TestDashboardMetricsExist checks the metrics Latchkey registers in
// internal/metrics, with the labels the dashboard uses: the HTTP, token and
// sign-in instruments and the Go and process collectors. (The mail, rate
// limit, pool and key metrics are not checked here.)
func TestDashboardMetricsExist(t *testing.T) {
	m := metrics.New()
	r := mux.NewRouter()
	r.Use(m.Middleware)
	r.Handle("/oauth2/token", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/oauth2/token", nil))
	m.TokenIssued("client_credentials")
	m.SignIn("locked")
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string][]string{}
	for _, mf := range mfs {
		var names []string
		if len(mf.GetMetric()) > 0 {
			for _, l := range mf.GetMetric()[0].GetLabel() {
				names = append(names, l.GetName())
			}
		}
		labels[mf.GetName()] = names
	}
	want := map[string][]string{
		"latchkey_http_requests_total":           {"route", "method", "code"},
		"latchkey_http_request_duration_seconds": {"route"},
		"latchkey_tokens_issued_total":           {"grant_type"},
		"latchkey_sign_ins_total":                {"outcome"},
	}
	for name, ls := range want {
		got, ok := labels[name]
		if !ok {
			t.Errorf("internal/metrics no longer registers %s", name)
		}
		for _, l := range ls {
			if !slices.Contains(got, l) {
				t.Errorf("%s has labels %v, the dashboard uses %q", name, got, l)
			}
		}
	}

	d := readDashboard(t)
	var all []panel
	for _, p := range d.Panels {
		all = append(all, p)
		all = append(all, p.Panels...)
	}
	for _, p := range all {
		for _, q := range p.Targets {
			for _, name := range metricName.FindAllString(q.Expr, -1) {
				family := histogramSuffix.ReplaceAllString(name, "")
				if strings.HasPrefix(name, "latchkey_") && want[family] == nil {
					continue // registered outside internal/metrics.New, or not yet
				}
				if strings.HasPrefix(name, "process_") && runtime.GOOS != "linux" {
					continue // the process collector's metrics are Linux's
				}
				if _, ok := labels[family]; !ok {
					t.Errorf("panel %q uses %s, which Latchkey does not export", p.Title, name)
				}
			}
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record      string            `yaml:"record"`
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type ruleTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name       string `yaml:"name"`
		AlertTests []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestAlerts holds every alert to the conventions promtool does not check,
// and to having a unit test in alerts_test.yaml that makes it fire.
func TestAlerts(t *testing.T) {
	var rules ruleFile
	readYAML(t, "alerts.yaml", &rules)
	var tests ruleTests
	readYAML(t, "alerts_test.yaml", &tests)
	if !slices.Contains(tests.RuleFiles, "alerts.yaml") {
		t.Errorf("alerts_test.yaml does not load alerts.yaml (rule_files: %v)", tests.RuleFiles)
	}
	fired := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, at := range tc.AlertTests {
			if len(at.ExpAlerts) > 0 {
				fired[at.Alertname] = true
			}
		}
	}
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts = append(alerts, r.Alert)
			if r.For == "" {
				t.Errorf("%s: no `for`", r.Alert)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: no %s annotation", r.Alert, a)
				}
			}
			if !fired[r.Alert] {
				t.Errorf("%s: no test in alerts_test.yaml expects it to fire", r.Alert)
			}
		}
	}
	for _, name := range []string{"LatchkeyHighErrorRate", "LatchkeyHighLatency", "LatchkeyMailBacklog",
		"LatchkeyDatabaseDown", "LatchkeyKeyRotationOverdue", "LatchkeyRateLimitSpike"} {
		if !slices.Contains(alerts, name) {
			t.Errorf("alerts.yaml has no alert %s (deploy/README.md documents it)", name)
		}
	}
}
