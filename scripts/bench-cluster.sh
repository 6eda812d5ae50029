#!/usr/bin/env bash
# Three replicas on one PostgreSQL: client credentials and full sign-ins
# with the load spread over three `latchkey serve` processes (round robin,
# no stickiness, as cmd/latchkey-bench -targets does), beside the same on
# one process; and the cost of the shared rate limits on the sign-in path
# (one process, limits off and on but never reached). Called by
# `make bench`; prints a Markdown section.
#
#   scripts/bench-cluster.sh
#   BENCH_DURATION=5s BENCH_CLUSTER_CONCURRENCY="16" scripts/bench-cluster.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
CONCS=${BENCH_CLUSTER_CONCURRENCY:-16 64}
BASE_PORT=${BENCH_CLUSTER_PORT:-18180}
PG_USER=${BENCH_PG_USER:-postgres}
DB="latchkey_cluster_$$"
REDIRECT_URI="http://127.0.0.1:1/cb"
PASSWORD="cluster-bench-password-$$"

log() { printf 'bench-cluster: %s\n' "$*" >&2; }
if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
	log "no PostgreSQL on 127.0.0.1:5432; skipping the three-replica benchmark"
	exit 0
fi
command -v psql >/dev/null || { log "psql not found; skipping"; exit 0; }
json() { # json FIELD < report
	if command -v jq >/dev/null; then jq -r ".$1"; else python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; fi
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/latchkey-cluster.XXXXXX")
pids=()
stop_all() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	pids=()
}
cleanup() {
	stop_all
	psql -h 127.0.0.1 -U "$PG_USER" -d postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/latchkey" ./cmd/latchkey
go build -o "$tmp/latchkey-bench" ./cmd/latchkey-bench
psql -h 127.0.0.1 -U "$PG_USER" -d postgres -qc "CREATE DATABASE $DB"
export LATCHKEY_DATABASE_URL="postgres://$PG_USER@127.0.0.1:5432/$DB?sslmode=disable"
export LATCHKEY_SECRET="cluster-bench-secret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export LATCHKEY_ISSUER="http://127.0.0.1:$BASE_PORT" LATCHKEY_LOG_LEVEL=warn
export LATCHKEY_ARGON2_MEMORY_KIB=19456 LATCHKEY_ARGON2_ITERATIONS=2 LATCHKEY_ARGON2_PARALLELISM=1
export LATCHKEY_DATA_DIR="$tmp/data"
mkdir -p "$LATCHKEY_DATA_DIR"
"$tmp/latchkey" migrate up >/dev/null

# start N [limits]: N replicas on BASE_PORT, +10, +20 (admin +1); limits
# "off" (as bench.sh runs) or "on" (the defaults' statements, budgets
# never reached).
targets=""
start() {
	local n=$1 limits=$2 i
	targets=""
	for ((i = 0; i < n; i++)); do
		local port=$((BASE_PORT + 10 * i))
		if [[ $limits == off ]]; then
			LATCHKEY_RATE_LOGIN_IP=off LATCHKEY_RATE_LOGIN_ACCOUNT=off \
				LATCHKEY_HTTP_ADDR="127.0.0.1:$port" LATCHKEY_ADMIN_ADDR="127.0.0.1:$((port + 1))" LATCHKEY_MIGRATE=false \
				"$tmp/latchkey" serve >"$tmp/serve-$i.log" 2>&1 &
		else
			LATCHKEY_RATE_LOGIN_IP=100000000/1s LATCHKEY_RATE_LOGIN_ACCOUNT=100000000/1s \
				LATCHKEY_HTTP_ADDR="127.0.0.1:$port" LATCHKEY_ADMIN_ADDR="127.0.0.1:$((port + 1))" LATCHKEY_MIGRATE=false \
				"$tmp/latchkey" serve >"$tmp/serve-$i.log" 2>&1 &
		fi
		pids+=($!)
		targets+="${targets:+,}http://127.0.0.1:$port"
	done
	for ((i = 0; i < n; i++)); do
		local port=$((BASE_PORT + 10 * i)) deadline=$((SECONDS + 60))
		until curl -fsS -o /dev/null "http://127.0.0.1:$((port + 1))/readyz" 2>/dev/null; do
			((SECONDS < deadline)) || { cat "$tmp/serve-$i.log" >&2; log "replica $i did not start"; exit 1; }
			sleep 0.1
		done
	done
}

cc=$("$tmp/latchkey" clients create --json --name cc --grant-type client_credentials --scope api --access-token-format opaque)
cc_id=$(json client_id <<<"$cc") cc_secret=$(json client_secret <<<"$cc")
spa_id=$("$tmp/latchkey" clients create --json --name spa --public --first-party --redirect-uri "$REDIRECT_URI" \
	--grant-type authorization_code --scope "openid profile email" | json client_id)
users=""
for i in $(seq 0 31); do
	printf '%s\n' "$PASSWORD" | "$tmp/latchkey" users create --username "cl$i" --email "cl$i@example.com" \
		--password-stdin --email-verified --json >/dev/null
	users+="${users:+,}cl$i"
done

rows="$tmp/rows.md"
: >"$rows"
measure() { # measure LABEL REPLICAS SCENARIO C ARGS...
	local label=$1 n=$2 scenario=$3 c=$4 out="$tmp/out.json"
	shift 4
	log "$label: $scenario c=$c on $n"
	if "$tmp/latchkey-bench" -issuer "$LATCHKEY_ISSUER" -targets "$targets" -scenario "$scenario" -c "$c" \
		-d "$DURATION" -warmup "$WARMUP" -json "$@" >"$out" 2>"$tmp/err"; then
		printf '| %s | %s | %s | %s | %.0f | %.2f ms | %.2f ms | %s |\n' "$label" "$scenario" "$n" "$c" \
			"$(json rps <"$out")" "$(json p50_ms <"$out")" "$(json p99_ms <"$out")" "$(json errors <"$out")" >>"$rows"
	else
		printf '| %s | %s | %s | %s | FAILED: %s | | | |\n' "$label" "$scenario" "$n" "$c" "$(head -c 200 "$tmp/err" | tr '\n|' '  ')" >>"$rows"
	fi
}
cc_args=(-client-id "$cc_id" -client-secret "$cc_secret" -scope api)
ac_args=(-public-client-id "$spa_id" -redirect-uri "$REDIRECT_URI" -username "$users" -password "$PASSWORD")

for n in 1 3; do
	start "$n" off
	for c in $CONCS; do
		measure "limits off" "$n" cc-opaque "$c" "${cc_args[@]}"
		measure "limits off" "$n" authcode "$c" "${ac_args[@]}"
	done
	stop_all
done
start 1 on
for c in $CONCS; do
	measure "limits on (shared, never reached)" 1 authcode "$c" "${ac_args[@]}"
done
stop_all

echo
echo "## Three replicas on one PostgreSQL"
echo
echo "$(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) CPUs:" \
	"load generator, every replica and PostgreSQL on one machine, so three replicas share the same cores as one." \
	"Requests go to the replicas in turn (no stickiness: one sign-in's steps land on different replicas)." \
	"With limits on, each sign-in runs the shared rate limit's statements (per-IP and per-account checks, a reset on success)."
echo
echo "| rate limits | scenario | replicas | c | req/s | p50 | p99 | errors |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
cat "$rows"
