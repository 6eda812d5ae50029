#!/usr/bin/env bash
# Checks the Helm chart deploy/helm/latchkey (issue 12):
#   1. `helm lint --strict` with the default values and with values-ha.yaml;
#   2. `helm template` renders both into a temporary directory;
#   3. the chart refuses a few unsafe settings (a secret in `config` or
#      `extraEnv`, an admin port open to everyone, an Ingress host other than
#      the issuer's...), each for the expected reason;
#   4. the Go test in deploy/helm checks invariants of the rendered
#      manifests (non-root, read-only root, probes, admin port private,
#      NetworkPolicy, migration hook, secretKeyRefs, HA replicas and PDB).
# Helm comes from $HELM, else PATH, else it is built once with `go install`
# (pinned below; no download other than the Go module proxy) into
# ${XDG_CACHE_HOME:-$HOME/.cache}/latchkey/helm-VERSION and reused. The first
# build takes about 3 minutes on 2 cores. Run by `make helm-check` and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=v3.22.0
chart=deploy/helm/latchkey
release=latchkey
namespace=latchkey

step() { printf -- '-- %s\n' "$*"; }
start=$SECONDS

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# build_helm DIR: go install the pinned Helm into DIR. The ldflags are those
# of Helm's own Makefile: the version, and the Kubernetes version that
# `helm template` and the lint rules assume (from Helm's client-go; without
# it Helm assumes Kubernetes 1.20).
build_helm() {
	local dir=$1 gomod minor
	# Outside this module (its go.mod is not touched) and workspace.
	gomod=$(cd "$tmp" && GOWORK=off GOFLAGS=-mod=mod go mod download -json "helm.sh/helm/v3@$HELM_VERSION" |
		sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
	minor=$(sed -n 's|^[[:space:]]*k8s.io/client-go v0\.\([0-9]*\)\..*|\1|p' "$gomod" | head -1)
	if [ -z "$minor" ]; then
		echo "check-helm: cannot find k8s.io/client-go in $gomod" >&2
		exit 1
	fi
	local ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
	local pkg
	for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
		ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$minor"
	done
	rm -rf "$dir".tmp.*
	mkdir -p "$dir.tmp.$$"
	(cd "$tmp" && GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 GOBIN="$dir.tmp.$$" \
		go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION")
	rm -rf "$dir"
	mv "$dir.tmp.$$" "$dir"
}

if [ -n "${HELM:-}" ]; then
	helm=$HELM
elif command -v helm >/dev/null; then
	helm=$(command -v helm)
else
	dir="${XDG_CACHE_HOME:-$HOME/.cache}/latchkey/helm-$HELM_VERSION"
	helm="$dir/helm"
	if [ ! -x "$helm" ]; then
		step "building helm $HELM_VERSION into $dir (go install, cached for later runs)"
		t0=$SECONDS
		build_helm "$dir"
		step "helm built in $((SECONDS - t0))s"
	fi
fi
step "helm: $helm ($("$helm" version --short 2>/dev/null || echo unknown version))"

for set in default ha; do
	args=()
	if [ "$set" = ha ]; then args=(-f "$chart/values-ha.yaml"); fi
	step "helm lint --strict ($set values)"
	"$helm" lint --strict "$chart" ${args[@]+"${args[@]}"}
	step "helm template ($set values) > $tmp/$set.yaml"
	"$helm" template "$release" "$chart" --namespace "$namespace" ${args[@]+"${args[@]}"} >"$tmp/$set.yaml"
done

# must_fail DESCRIPTION PATTERN HELM-TEMPLATE-ARGS...: the chart must refuse
# these values, with an error matching PATTERN (so for the expected reason).
must_fail() {
	local what=$1 pattern=$2
	shift 2
	if "$helm" template "$release" "$chart" --namespace "$namespace" "$@" >/dev/null 2>"$tmp/err"; then
		echo "check-helm: the chart accepted $what" >&2
		exit 1
	fi
	if ! grep -q -e "$pattern" "$tmp/err"; then
		echo "check-helm: $what: refused, but not with /$pattern/:" >&2
		cat "$tmp/err" >&2
		exit 1
	fi
	step "refused $what"
}
must_fail "a secret in config" "secrets never go in values" \
	--set config.LATCHKEY_SECRET=0123456789abcdef0123456789abcdef
must_fail "a literal secret in extraEnv" "secrets never go in values" \
	--set-json 'extraEnv=[{"name":"LATCHKEY_DATABASE_URL","value":"postgres://u:p@h/db"}]'
must_fail "an admin port open to every source" "adminFrom must not be empty" \
	--set networkPolicy.adminFrom=null
must_fail "an admin port open to an IP block" "networkPolicy/adminFrom" \
	--set-json 'networkPolicy.adminFrom=[{"ipBlock":{"cidr":"0.0.0.0/0"}}]'
must_fail "an Ingress host other than the issuer's" "must include the issuer's host" \
	--set ingress.enabled=true --set-json 'ingress.hosts=[{"host":"other.example.com","paths":[{"path":"/"}]}]'
must_fail "a grace period not above the shutdown timeout" "must exceed shutdownTimeout" \
	--set terminationGracePeriodSeconds=20
must_fail "a type for the admin Service" "additional properties 'type' not allowed" \
	--set adminService.type=LoadBalancer

step "go test ./deploy/helm (invariants of the rendered manifests)"
LATCHKEY_HELM_RENDERED="$tmp" go test -count=1 ./deploy/helm/

step "helm check passed in $((SECONDS - start))s"
