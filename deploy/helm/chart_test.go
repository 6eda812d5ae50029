package helm_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// renderedEnv names a directory holding default.yaml and ha.yaml, the
// output of `helm template` with the chart's default values and with
// values-ha.yaml (scripts/check-helm.sh sets it).
const renderedEnv = "LATCHKEY_HELM_RENDERED"

// valueSets are the values files the chart ships, by rendered file name.
var valueSets = []struct {
	name   string // rendered file: NAME.yaml
	values string // -f argument, relative to this directory ("" = defaults)
	ha     bool
}{
	{name: "default"},
	{name: "ha", values: "latchkey/values-ha.yaml", ha: true},
}

// secretVars must never hold a literal value: only valueFrom.secretKeyRef.
var secretVars = []string{
	"LATCHKEY_SECRET", "LATCHKEY_PREVIOUS_SECRETS", "LATCHKEY_DATABASE_URL",
	"LATCHKEY_SMTP_URL", "LATCHKEY_GOOGLE_CLIENT_SECRET", "LATCHKEY_METRICS_TOKEN",
}

// requiredSecretVars must be wired, from a Secret, into every Latchkey
// container, with a reference that is not optional.
var requiredSecretVars = []string{"LATCHKEY_SECRET", "LATCHKEY_DATABASE_URL"}

// invariants are checked for every value set.
var invariants = []struct {
	name  string
	check func(t *testing.T, r *release, ha bool)
}{
	{"containers run as non-root with a read-only root and no privilege escalation", checkSecurityContexts},
	{"no service account token and no service links", checkPodHygiene},
	{"liveness /healthz and readiness /readyz on the admin port", checkProbes},
	{"admin Service is ClusterIP and no other Service exposes the admin port", checkAdminService},
	{"no Ingress routes to the admin Service or port", checkIngress},
	{"NetworkPolicy restricts the admin port", checkNetworkPolicy},
	{"migration Job is a pre-install,pre-upgrade hook running migrate up", checkMigrationJob},
	{"secrets only through secretKeyRef, and no Secret rendered", checkSecrets},
	{"grace period exceeds the shutdown timeout; pods do not migrate", checkShutdownAndMigrate},
	{"replicas, autoscaler and PodDisruptionBudget", checkAvailability},
	{"topology spread over zones and nodes", checkTopologySpread},
	{"ServiceMonitor scrapes /metrics on the admin Service", checkServiceMonitor},
}

func TestChartInvariants(t *testing.T) {
	dir := os.Getenv(renderedEnv)
	if dir == "" {
		helm, err := exec.LookPath("helm")
		if err != nil {
			t.Skipf("%s is unset and helm is not on PATH (scripts/check-helm.sh renders the chart and runs this test)", renderedEnv)
		}
		dir = t.TempDir()
		for _, vs := range valueSets {
			args := []string{"template", "latchkey", "latchkey", "--namespace", "latchkey"}
			if vs.values != "" {
				args = append(args, "-f", vs.values)
			}
			out, err := exec.Command(helm, args...).Output()
			if err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, ee.Stderr)
				}
				t.Fatalf("helm %s: %v", strings.Join(args, " "), err)
			}
			if err := os.WriteFile(filepath.Join(dir, vs.name+".yaml"), out, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			r, err := loadRelease(filepath.Join(dir, vs.name+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			for _, inv := range invariants {
				t.Run(inv.name, func(t *testing.T) { inv.check(t, r, vs.ha) })
			}
		})
	}
}

// ---- the manifests, as far as the invariants need them ----

type manifest struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Spec       yaml.Node         `yaml:"spec"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`

	doc yaml.Node // the whole document
}

func (m *manifest) String() string { return m.Kind + "/" + m.Metadata.Name }

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

// matches reports whether the selector selects labels. An empty selector
// matches everything (as in a NetworkPolicy); matchExpressions are not used
// by this chart.
func (s labelSelector) matches(labels map[string]string) bool {
	for k, v := range s.MatchLabels {
		if labels[k] != v {
			return false
		}
	}
	return true
}

type workloadSpec struct {
	Replicas *int          `yaml:"replicas"`
	Selector labelSelector `yaml:"selector"`
	Template podTemplate   `yaml:"template"`
	// CronJob
	JobTemplate *struct {
		Spec struct {
			Template podTemplate `yaml:"template"`
		} `yaml:"spec"`
	} `yaml:"jobTemplate"`
}

type podTemplate struct {
	Metadata struct {
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec podSpec `yaml:"spec"`
}

type podSpec struct {
	AutomountServiceAccountToken  *bool           `yaml:"automountServiceAccountToken"`
	EnableServiceLinks            *bool           `yaml:"enableServiceLinks"`
	HostNetwork                   bool            `yaml:"hostNetwork"`
	TerminationGracePeriodSeconds *int64          `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               securityContext `yaml:"securityContext"`
	TopologySpreadConstraints     []struct {
		MaxSkew           int           `yaml:"maxSkew"`
		TopologyKey       string        `yaml:"topologyKey"`
		WhenUnsatisfiable string        `yaml:"whenUnsatisfiable"`
		LabelSelector     labelSelector `yaml:"labelSelector"`
	} `yaml:"topologySpreadConstraints"`
	InitContainers []container `yaml:"initContainers"`
	Containers     []container `yaml:"containers"`
}

type securityContext struct {
	RunAsNonRoot             *bool  `yaml:"runAsNonRoot"`
	RunAsUser                *int64 `yaml:"runAsUser"`
	ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
	AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
	Privileged               *bool  `yaml:"privileged"`
	Capabilities             *struct {
		Add  []string `yaml:"add"`
		Drop []string `yaml:"drop"`
	} `yaml:"capabilities"`
	SeccompProfile *struct {
		Type string `yaml:"type"`
	} `yaml:"seccompProfile"`
}

type container struct {
	Name  string   `yaml:"name"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env     []envVar `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	SecurityContext securityContext `yaml:"securityContext"`
	LivenessProbe   *probe          `yaml:"livenessProbe"`
	ReadinessProbe  *probe          `yaml:"readinessProbe"`
}

type envVar struct {
	Name      string  `yaml:"name"`
	Value     *string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name     string `yaml:"name"`
			Key      string `yaml:"key"`
			Optional *bool  `yaml:"optional"`
		} `yaml:"secretKeyRef"`
	} `yaml:"valueFrom"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"` // name or number
	} `yaml:"httpGet"`
}

type serviceSpec struct {
	Type        string            `yaml:"type"`
	Selector    map[string]string `yaml:"selector"`
	ExternalIPs []string          `yaml:"externalIPs"`
	Ports       []struct {
		Name       string `yaml:"name"`
		Port       int    `yaml:"port"`
		TargetPort string `yaml:"targetPort"`
	} `yaml:"ports"`
}

type ingressBackend struct {
	Service *struct {
		Name string `yaml:"name"`
		Port struct {
			Name   string `yaml:"name"`
			Number int    `yaml:"number"`
		} `yaml:"port"`
	} `yaml:"service"`
	Resource *struct {
		Name string `yaml:"name"`
	} `yaml:"resource"`
}

type ingressSpec struct {
	DefaultBackend *ingressBackend `yaml:"defaultBackend"`
	Rules          []struct {
		Host string `yaml:"host"`
		HTTP *struct {
			Paths []struct {
				Path    string         `yaml:"path"`
				Backend ingressBackend `yaml:"backend"`
			} `yaml:"paths"`
		} `yaml:"http"`
	} `yaml:"rules"`
}

type networkPolicySpec struct {
	PodSelector labelSelector `yaml:"podSelector"`
	PolicyTypes []string      `yaml:"policyTypes"`
	Ingress     []struct {
		Ports []struct {
			Port    string `yaml:"port"`
			EndPort int    `yaml:"endPort"`
		} `yaml:"ports"`
		From []struct {
			IPBlock *struct {
				CIDR string `yaml:"cidr"`
			} `yaml:"ipBlock"`
			NamespaceSelector *labelSelector `yaml:"namespaceSelector"`
			PodSelector       *labelSelector `yaml:"podSelector"`
		} `yaml:"from"`
	} `yaml:"ingress"`
}

type hpaSpec struct {
	ScaleTargetRef struct {
		Kind string `yaml:"kind"`
		Name string `yaml:"name"`
	} `yaml:"scaleTargetRef"`
	MinReplicas *int `yaml:"minReplicas"`
	MaxReplicas int  `yaml:"maxReplicas"`
}

type pdbSpec struct {
	MinAvailable   *string       `yaml:"minAvailable"`
	MaxUnavailable *string       `yaml:"maxUnavailable"`
	Selector       labelSelector `yaml:"selector"`
}

type serviceMonitorSpec struct {
	Selector  labelSelector `yaml:"selector"`
	Endpoints []struct {
		Port       string `yaml:"port"`
		TargetPort string `yaml:"targetPort"`
		Path       string `yaml:"path"`
	} `yaml:"endpoints"`
}

// release is one rendered value set.
type release struct {
	objects []*manifest
}

func loadRelease(path string) (*release, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	r := &release{}
	for {
		var m manifest
		err := dec.Decode(&m.doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil {
			err = m.doc.Decode(&m)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if m.Kind == "" { // an empty document (a template rendering nothing)
			continue
		}
		r.objects = append(r.objects, &m)
	}
	if len(r.objects) == 0 {
		return nil, fmt.Errorf("%s: no manifests", path)
	}
	return r, nil
}

func (r *release) ofKind(kind string) []*manifest {
	var out []*manifest
	for _, m := range r.objects {
		if m.Kind == kind {
			out = append(out, m)
		}
	}
	return out
}

func decodeSpec[T any](t *testing.T, m *manifest) T {
	t.Helper()
	var s T
	if err := m.Spec.Decode(&s); err != nil {
		t.Fatalf("%s: spec: %v", m, err)
	}
	return s
}

// workload is an object with a pod template.
type workload struct {
	m    *manifest
	spec workloadSpec
	pod  podTemplate
}

var workloadKinds = []string{"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}

func (r *release) workloads(t *testing.T) []workload {
	t.Helper()
	var out []workload
	for _, m := range r.objects {
		if !slices.Contains(workloadKinds, m.Kind) {
			continue
		}
		w := workload{m: m}
		switch m.Kind {
		case "Pod":
			w.pod.Metadata.Labels = m.Metadata.Labels
			w.pod.Spec = decodeSpec[podSpec](t, m)
		default:
			w.spec = decodeSpec[workloadSpec](t, m)
			w.pod = w.spec.Template
			if w.spec.JobTemplate != nil {
				w.pod = w.spec.JobTemplate.Spec.Template
			}
		}
		out = append(out, w)
	}
	if len(out) == 0 {
		t.Fatal("no workloads rendered")
	}
	return out
}

// server is the Latchkey Deployment and its "latchkey" container.
func (r *release) server(t *testing.T) (workload, container) {
	t.Helper()
	var deps []workload
	for _, w := range r.workloads(t) {
		if w.m.Kind == "Deployment" {
			deps = append(deps, w)
		}
	}
	if len(deps) != 1 {
		t.Fatalf("want exactly one Deployment, got %d", len(deps))
	}
	for _, c := range deps[0].pod.Spec.Containers {
		if c.Name == "latchkey" {
			return deps[0], c
		}
	}
	t.Fatalf("%s: no container named latchkey", deps[0].m)
	panic("unreachable")
}

// ports returns the server container's port numbers by name.
func (r *release) ports(t *testing.T) (http, admin int) {
	t.Helper()
	_, c := r.server(t)
	for _, p := range c.Ports {
		switch p.Name {
		case "http":
			http = p.ContainerPort
		case "admin":
			admin = p.ContainerPort
		}
	}
	if http == 0 || admin == 0 || http == admin {
		t.Fatalf("server container: want distinct ports named http and admin, got http=%d admin=%d", http, admin)
	}
	return http, admin
}

// isPort reports whether a port reference (a name or a number) denotes the
// container port named name with number num.
func isPort(ref, name string, num int) bool {
	return ref == name || ref == strconv.Itoa(num)
}

// ---- invariants ----

func checkSecurityContexts(t *testing.T, r *release, _ bool) {
	for _, w := range r.workloads(t) {
		pod := w.pod.Spec
		if pod.HostNetwork {
			t.Errorf("%s: hostNetwork", w.m)
		}
		for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
			where := fmt.Sprintf("%s container %s", w.m, c.Name)
			sc, psc := c.SecurityContext, pod.SecurityContext
			nonRoot := effective(sc.RunAsNonRoot, psc.RunAsNonRoot)
			if nonRoot == nil || !*nonRoot {
				t.Errorf("%s: runAsNonRoot is not true", where)
			}
			if uid := effective(sc.RunAsUser, psc.RunAsUser); uid == nil || *uid == 0 {
				t.Errorf("%s: runAsUser is unset or 0 (want a numeric non-root uid, the image's 65532)", where)
			} else if *uid != 65532 {
				t.Errorf("%s: runAsUser %d, want 65532 (the image's nonroot user)", where, *uid)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s: readOnlyRootFilesystem is not true", where)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation is not false", where)
			}
			if sc.Privileged != nil && *sc.Privileged {
				t.Errorf("%s: privileged", where)
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
				t.Errorf("%s: capabilities do not drop ALL", where)
			} else if len(sc.Capabilities.Add) > 0 {
				t.Errorf("%s: capabilities add %v", where, sc.Capabilities.Add)
			}
			sp := sc.SeccompProfile
			if sp == nil {
				sp = psc.SeccompProfile
			}
			if sp == nil || (sp.Type != "RuntimeDefault" && sp.Type != "Localhost") {
				t.Errorf("%s: seccomp profile is not RuntimeDefault", where)
			}
		}
	}
}

// effective returns the container-level setting if set, else the pod-level one.
func effective[T any](container, pod *T) *T {
	if container != nil {
		return container
	}
	return pod
}

func checkPodHygiene(t *testing.T, r *release, _ bool) {
	for _, w := range r.workloads(t) {
		if a := w.pod.Spec.AutomountServiceAccountToken; a == nil || *a {
			t.Errorf("%s: automountServiceAccountToken is not false", w.m)
		}
		// Service links would put LATCHKEY_PORT, LATCHKEY_ADMIN_PORT... in
		// Latchkey's configuration namespace.
		if l := w.pod.Spec.EnableServiceLinks; l == nil || *l {
			t.Errorf("%s: enableServiceLinks is not false", w.m)
		}
	}
	for _, sa := range r.ofKind("ServiceAccount") {
		var body struct {
			Automount *bool `yaml:"automountServiceAccountToken"`
		}
		if err := sa.doc.Decode(&body); err != nil {
			t.Fatalf("%s: %v", sa, err)
		}
		if body.Automount == nil || *body.Automount {
			t.Errorf("%s: automountServiceAccountToken is not false", sa)
		}
	}
}

func checkProbes(t *testing.T, r *release, _ bool) {
	_, c := r.server(t)
	_, admin := r.ports(t)
	// /healthz and /readyz are served by the admin listener only.
	for _, p := range []struct {
		kind string
		pr   *probe
		path string
	}{
		{"liveness", c.LivenessProbe, "/healthz"},
		{"readiness", c.ReadinessProbe, "/readyz"},
	} {
		switch {
		case p.pr == nil || p.pr.HTTPGet == nil:
			t.Errorf("server: no %s httpGet probe", p.kind)
		case p.pr.HTTPGet.Path != p.path:
			t.Errorf("server: %s probe path %q, want %q", p.kind, p.pr.HTTPGet.Path, p.path)
		case !isPort(p.pr.HTTPGet.Port, "admin", admin):
			t.Errorf("server: %s probe on port %q, want the admin port (the only listener serving %s)", p.kind, p.pr.HTTPGet.Port, p.path)
		}
	}
}

// services returns the Services selecting the server pods that expose the
// admin port and those exposing the public port.
func (r *release) services(t *testing.T) (adminSvcs, publicSvcs []*manifest) {
	t.Helper()
	dep, _ := r.server(t)
	http, admin := r.ports(t)
	for _, m := range r.ofKind("Service") {
		s := decodeSpec[serviceSpec](t, m)
		if !(labelSelector{MatchLabels: s.Selector}).matches(dep.pod.Metadata.Labels) || len(s.Selector) == 0 {
			continue
		}
		for _, p := range s.Ports {
			target := p.TargetPort
			if target == "" {
				target = strconv.Itoa(p.Port)
			}
			if isPort(target, "admin", admin) {
				adminSvcs = append(adminSvcs, m)
			}
			if isPort(target, "http", http) {
				publicSvcs = append(publicSvcs, m)
			}
		}
	}
	return adminSvcs, publicSvcs
}

func checkAdminService(t *testing.T, r *release, _ bool) {
	adminSvcs, publicSvcs := r.services(t)
	if len(adminSvcs) != 1 {
		t.Fatalf("want one Service for the admin port, got %d", len(adminSvcs))
	}
	if len(publicSvcs) != 1 || publicSvcs[0] == adminSvcs[0] {
		t.Fatalf("want one public Service, apart from the admin one; got %v", publicSvcs)
	}
	s := decodeSpec[serviceSpec](t, adminSvcs[0])
	if s.Type != "" && s.Type != "ClusterIP" {
		t.Errorf("%s: type %s, want ClusterIP", adminSvcs[0], s.Type)
	}
	if len(s.ExternalIPs) > 0 {
		t.Errorf("%s: externalIPs %v", adminSvcs[0], s.ExternalIPs)
	}
	if len(s.Ports) != 1 {
		t.Errorf("%s: want only the admin port, got %d ports", adminSvcs[0], len(s.Ports))
	}
	ps := decodeSpec[serviceSpec](t, publicSvcs[0])
	if ps.Ports[0].Port != 80 {
		t.Errorf("%s: port %d, want 80", publicSvcs[0], ps.Ports[0].Port)
	}
}

func checkIngress(t *testing.T, r *release, ha bool) {
	adminSvcs, publicSvcs := r.services(t)
	_, admin := r.ports(t)
	adminNames := map[string]bool{}
	adminSvcPorts := map[int]bool{admin: true}
	for _, m := range adminSvcs {
		adminNames[m.Metadata.Name] = true
		for _, p := range decodeSpec[serviceSpec](t, m).Ports {
			adminSvcPorts[p.Port] = true
		}
	}
	publicName := ""
	if len(publicSvcs) > 0 {
		publicName = publicSvcs[0].Metadata.Name
	}
	ingresses := r.ofKind("Ingress")
	if ha && len(ingresses) == 0 {
		t.Fatal("values-ha.yaml enables the Ingress, but none was rendered")
	}
	if !ha && len(ingresses) != 0 {
		t.Errorf("the Ingress is rendered by default; it should be opt-in")
	}
	for _, m := range ingresses {
		s := decodeSpec[ingressSpec](t, m)
		var backends []ingressBackend
		if s.DefaultBackend != nil {
			backends = append(backends, *s.DefaultBackend)
		}
		for _, rule := range s.Rules {
			if rule.HTTP == nil {
				continue
			}
			for _, p := range rule.HTTP.Paths {
				backends = append(backends, p.Backend)
			}
		}
		if len(backends) == 0 {
			t.Errorf("%s: no backends", m)
		}
		for _, b := range backends {
			if b.Service == nil {
				t.Errorf("%s: a backend that is not a Service", m)
				continue
			}
			if adminNames[b.Service.Name] || b.Service.Port.Name == "admin" || adminSvcPorts[b.Service.Port.Number] {
				t.Errorf("%s: routes to the admin Service or port (%s port %q/%d)", m, b.Service.Name, b.Service.Port.Name, b.Service.Port.Number)
			}
			if b.Service.Name != publicName {
				t.Errorf("%s: backend %s, want the public Service %s", m, b.Service.Name, publicName)
			}
		}
	}
}

func checkNetworkPolicy(t *testing.T, r *release, _ bool) {
	dep, _ := r.server(t)
	http, admin := r.ports(t)
	var selecting int
	for _, m := range r.ofKind("NetworkPolicy") {
		s := decodeSpec[networkPolicySpec](t, m)
		if !s.PodSelector.matches(dep.pod.Metadata.Labels) {
			continue
		}
		if len(s.PolicyTypes) > 0 && !slices.Contains(s.PolicyTypes, "Ingress") {
			continue
		}
		selecting++
		publicOpen := false
		for i, rule := range s.Ingress {
			coversAdmin, coversHTTP := len(rule.Ports) == 0, len(rule.Ports) == 0
			for _, p := range rule.Ports {
				if isPort(p.Port, "admin", admin) || p.Port == "" {
					coversAdmin = true
				}
				if n, err := strconv.Atoi(p.Port); err == nil && p.EndPort != 0 && n <= admin && admin <= p.EndPort {
					coversAdmin = true
				}
				if isPort(p.Port, "http", http) {
					coversHTTP = true
				}
			}
			if coversHTTP {
				publicOpen = true
			}
			if !coversAdmin {
				continue
			}
			if len(rule.From) == 0 {
				t.Errorf("%s: ingress rule %d opens the admin port to every source", m, i)
			}
			for _, peer := range rule.From {
				if peer.IPBlock != nil {
					t.Errorf("%s: ingress rule %d opens the admin port to ipBlock %s (it must stay inside the cluster)", m, i, peer.IPBlock.CIDR)
				}
			}
		}
		if !publicOpen {
			t.Errorf("%s: no ingress rule admits the public port", m)
		}
	}
	if selecting == 0 {
		t.Error("no NetworkPolicy restricts ingress to the server pods")
	}
}

func checkMigrationJob(t *testing.T, r *release, _ bool) {
	var found bool
	for _, w := range r.workloads(t) {
		if w.m.Kind != "Job" {
			continue
		}
		var migrates bool
		for _, c := range w.pod.Spec.Containers {
			if slices.Equal(c.Args, []string{"migrate", "up"}) {
				migrates = true
			}
		}
		if !migrates {
			continue
		}
		found = true
		a := w.m.Metadata.Annotations
		hooks := strings.Split(strings.ReplaceAll(a["helm.sh/hook"], " ", ""), ",")
		if !slices.Contains(hooks, "pre-install") || !slices.Contains(hooks, "pre-upgrade") {
			t.Errorf("%s: helm.sh/hook %q, want pre-install,pre-upgrade", w.m, a["helm.sh/hook"])
		}
		if _, err := strconv.Atoi(a["helm.sh/hook-weight"]); err != nil {
			t.Errorf("%s: helm.sh/hook-weight %q is not a number", w.m, a["helm.sh/hook-weight"])
		}
		policies := strings.Split(strings.ReplaceAll(a["helm.sh/hook-delete-policy"], " ", ""), ",")
		if !slices.Contains(policies, "before-hook-creation") || !slices.Contains(policies, "hook-succeeded") {
			t.Errorf("%s: helm.sh/hook-delete-policy %q, want before-hook-creation,hook-succeeded", w.m, a["helm.sh/hook-delete-policy"])
		}
		// Its pod must not join the server Services or PDB.
		dep, _ := r.server(t)
		if dep.spec.Selector.matches(w.pod.Metadata.Labels) {
			t.Errorf("%s: its pod matches the Deployment's selector", w.m)
		}
	}
	if !found {
		t.Error("no Job runs `latchkey migrate up`")
	}
}

func checkSecrets(t *testing.T, r *release, _ bool) {
	for _, m := range r.ofKind("Secret") {
		t.Errorf("%s: the chart renders a Secret; secrets must come from an existing Secret", m)
	}
	for _, m := range r.ofKind("ConfigMap") {
		for _, k := range secretVars {
			if _, ok := m.Data[k]; ok {
				t.Errorf("%s: holds %s", m, k)
			}
		}
	}
	for _, w := range r.workloads(t) {
		for _, c := range slices.Concat(w.pod.Spec.InitContainers, w.pod.Spec.Containers) {
			where := fmt.Sprintf("%s container %s", w.m, c.Name)
			seen := map[string]bool{}
			for _, e := range c.Env {
				if !slices.Contains(secretVars, e.Name) {
					continue
				}
				if seen[e.Name] {
					t.Errorf("%s: %s set twice", where, e.Name)
				}
				seen[e.Name] = true
				if e.Value != nil {
					t.Errorf("%s: %s has a literal value", where, e.Name)
				}
				if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name == "" || e.ValueFrom.SecretKeyRef.Key == "" {
					t.Errorf("%s: %s is not a secretKeyRef", where, e.Name)
					continue
				}
				if slices.Contains(requiredSecretVars, e.Name) {
					if o := e.ValueFrom.SecretKeyRef.Optional; o != nil && *o {
						t.Errorf("%s: %s is optional; the pod must not start without it", where, e.Name)
					}
				}
			}
			for _, k := range requiredSecretVars {
				if !seen[k] {
					t.Errorf("%s: %s is not set from a Secret", where, k)
				}
			}
		}
	}
}

func checkShutdownAndMigrate(t *testing.T, r *release, _ bool) {
	dep, c := r.server(t)
	env := map[string]string{}
	for _, e := range c.Env {
		if e.Value != nil {
			env[e.Name] = *e.Value
		}
	}
	if env["LATCHKEY_MIGRATE"] != "false" {
		t.Errorf("server: LATCHKEY_MIGRATE=%q, want false (the hook Job migrates)", env["LATCHKEY_MIGRATE"])
	}
	d, err := time.ParseDuration(env["LATCHKEY_SHUTDOWN_TIMEOUT"])
	if err != nil {
		t.Fatalf("server: LATCHKEY_SHUTDOWN_TIMEOUT=%q: %v", env["LATCHKEY_SHUTDOWN_TIMEOUT"], err)
	}
	grace := dep.pod.Spec.TerminationGracePeriodSeconds
	if grace == nil || time.Duration(*grace)*time.Second <= d {
		t.Errorf("server: terminationGracePeriodSeconds %v not above LATCHKEY_SHUTDOWN_TIMEOUT %s", deref(grace), d)
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return "unset"
	}
	return *p
}

func checkAvailability(t *testing.T, r *release, ha bool) {
	dep, _ := r.server(t)
	var hpa *hpaSpec
	for _, m := range r.ofKind("HorizontalPodAutoscaler") {
		s := decodeSpec[hpaSpec](t, m)
		if s.ScaleTargetRef.Kind == "Deployment" && s.ScaleTargetRef.Name == dep.m.Metadata.Name {
			hpa = &s
		}
	}
	minReplicas := 1
	switch {
	case hpa != nil:
		if dep.spec.Replicas != nil {
			t.Errorf("%s: sets replicas although an HPA scales it (every upgrade would reset the count)", dep.m)
		}
		if hpa.MinReplicas != nil {
			minReplicas = *hpa.MinReplicas
		}
		if hpa.MaxReplicas < minReplicas {
			t.Errorf("HPA: maxReplicas %d below minReplicas %d", hpa.MaxReplicas, minReplicas)
		}
	case dep.spec.Replicas != nil:
		minReplicas = *dep.spec.Replicas
	}
	want := 2
	if ha {
		want = 3
	}
	if minReplicas < want {
		t.Errorf("%s: at least %d replicas (or an HPA with minReplicas %d), got %d", dep.m, want, want, minReplicas)
	}

	var pdbs []pdbSpec
	for _, m := range r.ofKind("PodDisruptionBudget") {
		s := decodeSpec[pdbSpec](t, m)
		if s.Selector.matches(dep.pod.Metadata.Labels) && len(s.Selector.MatchLabels) > 0 {
			pdbs = append(pdbs, s)
		}
	}
	if len(pdbs) != 1 {
		t.Fatalf("want one PodDisruptionBudget for the server pods, got %d", len(pdbs))
	}
	p := pdbs[0]
	switch {
	case p.MinAvailable != nil:
		n, err := strconv.Atoi(*p.MinAvailable)
		if err != nil {
			t.Fatalf("PDB minAvailable %q: want a number", *p.MinAvailable)
		}
		// It must leave room for one eviction, or node drains block.
		if n >= minReplicas {
			t.Errorf("PDB minAvailable %d with %d replicas blocks every eviction", n, minReplicas)
		}
		if ha && n < 2 {
			t.Errorf("PDB minAvailable %d, want at least 2 in HA", n)
		}
	case p.MaxUnavailable != nil:
		if n, err := strconv.Atoi(*p.MaxUnavailable); err != nil || n < 1 || n >= minReplicas {
			t.Errorf("PDB maxUnavailable %q with %d replicas", *p.MaxUnavailable, minReplicas)
		}
	default:
		t.Error("PDB sets neither minAvailable nor maxUnavailable")
	}
}

func checkTopologySpread(t *testing.T, r *release, ha bool) {
	dep, _ := r.server(t)
	when := map[string]string{}
	for _, c := range dep.pod.Spec.TopologySpreadConstraints {
		if !c.LabelSelector.matches(dep.pod.Metadata.Labels) || len(c.LabelSelector.MatchLabels) == 0 {
			t.Errorf("topology spread on %s: the label selector does not select the server pods", c.TopologyKey)
		}
		when[c.TopologyKey] = c.WhenUnsatisfiable
	}
	wantZone := "ScheduleAnyway"
	if ha {
		wantZone = "DoNotSchedule"
	}
	if got := when["topology.kubernetes.io/zone"]; got != wantZone {
		t.Errorf("zone spread: whenUnsatisfiable %q, want %q", got, wantZone)
	}
	if got := when["kubernetes.io/hostname"]; got != "ScheduleAnyway" {
		t.Errorf("hostname spread: whenUnsatisfiable %q, want ScheduleAnyway", got)
	}
}

func checkServiceMonitor(t *testing.T, r *release, ha bool) {
	sms := r.ofKind("ServiceMonitor")
	if !ha {
		if len(sms) != 0 {
			t.Error("a ServiceMonitor is rendered by default; it needs the Prometheus Operator CRDs and should be opt-in")
		}
		return
	}
	if len(sms) != 1 {
		t.Fatalf("values-ha.yaml: want one ServiceMonitor, got %d", len(sms))
	}
	adminSvcs, publicSvcs := r.services(t)
	if len(adminSvcs) != 1 {
		t.Fatalf("want one admin Service, got %d", len(adminSvcs))
	}
	s := decodeSpec[serviceMonitorSpec](t, sms[0])
	if !s.Selector.matches(adminSvcs[0].Metadata.Labels) {
		t.Errorf("%s: does not select the admin Service %s", sms[0], adminSvcs[0])
	}
	for _, p := range publicSvcs {
		if p != adminSvcs[0] && s.Selector.matches(p.Metadata.Labels) {
			t.Errorf("%s: also selects the public Service %s", sms[0], p)
		}
	}
	if len(s.Endpoints) == 0 {
		t.Fatalf("%s: no endpoints", sms[0])
	}
	for _, e := range s.Endpoints {
		if e.Port != "admin" || e.Path != "/metrics" {
			t.Errorf("%s: endpoint port %q path %q, want admin /metrics (metrics are served by the admin listener only)", sms[0], e.Port, e.Path)
		}
	}
}
