#!/usr/bin/env bash
# Checks deploy/observability (issue 12):
#   1. `go test ./deploy/observability`: the Grafana dashboard is valid JSON
#      with the datasource/job/instance variables, unique panel ids and a
#      non-overlapping layout; the HTTP, token, sign-in, Go and process
#      metrics it charts are the ones internal/metrics exports; every alert
#      has `for`, a severity, a summary and a description, and a unit test
#      that fires it. (Go, not python3 or jq: Go is the one tool every
#      machine that builds Latchkey has. `make test` runs it too.)
#   2. promtool check rules deploy/observability/alerts.yaml
#   3. promtool test rules deploy/observability/alerts_test.yaml
# promtool comes from $PROMTOOL, the PATH (Debian: package prometheus,
# which .ci/run installs) or ~/.cache/latchkey/bin (where
#   GOBIN=~/.cache/latchkey/bin go install github.com/prometheus/prometheus/cmd/promtool@v0.316.0
# puts it). This script installs nothing. Without promtool it skips steps 2
# and 3 with a message, and fails when CI=1 or LATCHKEY_REQUIRE_PROMTOOL=1.
# Run by `make observability-check` and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=deploy/observability
step() { printf -- '-- %s\n' "$*"; }

step "go test ./$dir (dashboard JSON, metric names, alert conventions)"
go test -count=1 "./$dir"

promtool=${PROMTOOL:-}
if [ -z "$promtool" ]; then
	if command -v promtool >/dev/null; then
		promtool=$(command -v promtool)
	elif [ -x "$HOME/.cache/latchkey/bin/promtool" ]; then
		promtool=$HOME/.cache/latchkey/bin/promtool
	fi
fi
if [ -z "$promtool" ]; then
	msg="check-observability: promtool not found, so the alert rules were not checked.
  Install it (Debian/Ubuntu: apt-get install --no-install-recommends prometheus),
  or: GOBIN=~/.cache/latchkey/bin go install github.com/prometheus/prometheus/cmd/promtool@v0.316.0
  or set PROMTOOL=/path/to/promtool."
	if [ "${CI:-}" = 1 ] || [ "${CI:-}" = true ] || [ "${LATCHKEY_REQUIRE_PROMTOOL:-}" = 1 ]; then
		echo "$msg" >&2
		exit 1
	fi
	echo "$msg (Not an error outside CI; set LATCHKEY_REQUIRE_PROMTOOL=1 to make it one.)" >&2
	exit 0
fi

step "$("$promtool" --version 2>&1 | head -1) ($promtool)"
step "promtool check rules $dir/alerts.yaml"
"$promtool" check rules "$dir/alerts.yaml"
step "promtool test rules $dir/alerts_test.yaml"
"$promtool" test rules "$dir/alerts_test.yaml"
echo "check-observability: ok"
