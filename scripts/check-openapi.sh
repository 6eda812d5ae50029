#!/usr/bin/env bash
# Checks admin/openapi.yaml as its readers will use it (issue 9.17):
#   1. Redocly CLI lints it (recommended-strict ruleset, scripts/openapi/redocly.yaml);
#   2. oapi-codegen, with its default settings (types, client, echo server,
#      embedded spec), generates a Go package from it, which must compile.
# Both tools are pinned: Redocly in scripts/openapi/package-lock.json
# (installed locally with `npm ci`), oapi-codegen below, and the generated
# package's dependencies in scripts/openapi/client/go.mod and go.sum. When
# a new oapi-codegen needs other dependencies, refresh those two files:
# generate into a copy of them and run `go mod tidy` there.
# Run by `make openapi-check` and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

OAPI_CODEGEN_VERSION=v2.8.2
spec=admin/openapi.yaml
dir=scripts/openapi

step() { printf -- '-- %s\n' "$*"; }
start=$SECONDS

# Redocly CLI 2.x needs Node.js >= 20.19 (22.12 on 22).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "check-openapi: node and npm are needed (Node.js >= 20.19)" >&2
	exit 1
fi
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=19)?0:1)' ||
	{ echo "check-openapi: Node.js $(node --version) is too old; Redocly CLI needs >= 20.19" >&2; exit 1; }

step "npm ci (scripts/openapi)"
npm ci --prefix "$dir" --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null

step "redocly lint $spec"
# No telemetry, no update check; the Node.js 20 deprecation banner is noise.
rc=0
out=$(REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
	node "$dir/node_modules/@redocly/cli/bin/cli.js" lint \
	--config "$dir/redocly.yaml" --format=stylish "$spec" 2>&1) || rc=$?
printf '%s\n' "$out" | grep -v -e '[║╔╚]' -e '^[[:space:]]*$' || true
if [ "$rc" != 0 ]; then
	echo "check-openapi: redocly lint failed" >&2
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
step "oapi-codegen $OAPI_CODEGEN_VERSION (default settings) into a temporary module"
cp "$dir/client/go.mod" "$dir/client/go.sum" "$tmp/"
go run "github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@$OAPI_CODEGEN_VERSION" \
	-package adminclient -o "$tmp/adminclient.go" "$spec"

step "go build + go vet of the generated package"
(cd "$tmp" && go build -mod=readonly ./... && go vet -mod=readonly ./...)

step "openapi check passed in $((SECONDS - start))s"
