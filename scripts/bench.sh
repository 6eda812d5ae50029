#!/usr/bin/env bash
# Load-tests a real `latchkey serve` on SQLite and (when one is reachable)
# PostgreSQL with cmd/latchkey-bench, and prints a Markdown table of
# throughput, latency and errors per backend, scenario and concurrency,
# the server's idle and peak memory, and the cost of one argon2id hash.
#
#   scripts/bench.sh                      # or: make bench
#   BENCH_BACKENDS=sqlite BENCH_DURATION=5s BENCH_CONCURRENCY="8" scripts/bench.sh
#
# Environment (all optional):
#   BENCH_BACKENDS     "sqlite postgres"   postgres is skipped if 127.0.0.1:5432 does not answer
#   BENCH_DURATION     10s                 measured time per scenario and concurrency
#   BENCH_WARMUP       2s                  warm-up before each measurement
#   BENCH_CONCURRENCY  "16 64"             closed-loop workers
#   BENCH_SCENARIOS    "discovery jwks cc-opaque cc-jwt introspect authcode authcode-totp"
#   BENCH_MFA_USERS    1000                accounts the authcode-totp scenario makes (TOTP codes are single-use per 30 s step)
#   BENCH_HTTP_PORT    18080, BENCH_ADMIN_PORT 18081
#   BENCH_PG_USER      postgres (PGPASSWORD etc. are passed to psql as usual)
#   BENCH_OUT          also write the report to this file
#
# The server runs with the sign-in rate limits off (see below).
#
# Needs go, curl and jq (or python3); psql for PostgreSQL. The load
# generator runs on the same machine as the server and competes with it
# for CPU; read the figures as a floor, not a capacity plan.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BACKENDS=${BENCH_BACKENDS:-sqlite postgres}
DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
CONCURRENCY=${BENCH_CONCURRENCY:-16 64}
SCENARIOS=${BENCH_SCENARIOS:-discovery jwks cc-opaque cc-jwt introspect authcode authcode-totp}
MFA_USERS=${BENCH_MFA_USERS:-1000}
HTTP_PORT=${BENCH_HTTP_PORT:-18080}
ADMIN_PORT=${BENCH_ADMIN_PORT:-18081}
PG_HOST=127.0.0.1
PG_PORT=5432
PG_USER=${BENCH_PG_USER:-postgres}
PG_DB="latchkey_bench_$$"
REDIRECT_URI="http://127.0.0.1:1/cb"
BENCH_USER="bench"
BENCH_PASSWORD="bench-password-$$-$RANDOM$RANDOM"

ISSUER="http://127.0.0.1:${HTTP_PORT}"
ADMIN="http://127.0.0.1:${ADMIN_PORT}"

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

have go || die "go is not on PATH"
have jq || have python3 || die "need jq or python3 to read JSON"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/latchkey-bench.XXXXXX")
server_pid=""
pg_created=""

stop_server() {
	[[ -n "$server_pid" ]] || return 0
	if kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$server_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$server_pid" 2>/dev/null || true
	fi
	wait "$server_pid" 2>/dev/null || true
	server_pid=""
}

drop_pg() {
	[[ -n "$pg_created" ]] || return 0
	psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -v ON_ERROR_STOP=1 -qc \
		"DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 ||
		psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -qc "DROP DATABASE IF EXISTS $PG_DB" >/dev/null 2>&1 ||
		log "could not drop database $PG_DB"
	pg_created=""
}

cleanup() {
	stop_server
	drop_pg
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# json_fields FIELD... reads one JSON object on stdin and prints the named
# top-level fields, tab-separated (null and missing as empty).
json_fields() {
	if have jq; then
		local expr
		expr=$(printf '.%s,' "$@")
		jq -r "[${expr%,}] | map(. // \"\") | @tsv"
	else
		python3 -c '
import json, sys
d = json.load(sys.stdin)
print("\t".join("" if d.get(k) is None else str(d[k]) for k in sys.argv[1:]))' "$@"
	fi
}

# error_samples prints "count× message" lines of a bench JSON report.
error_samples() {
	if have jq; then
		jq -r '.error_samples[]? | "\(.count)× \(.message)"'
	else
		python3 -c '
import json, sys
for s in json.load(sys.stdin).get("error_samples") or []:
    print("%d× %s" % (s["count"], s["message"]))'
	fi
}

http_ok() {
	if have curl; then
		curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null
	else
		# host:port/path without curl
		local rest=${1#http://} hostport path
		hostport=${rest%%/*}
		path=/${rest#*/}
		exec 3<>"/dev/tcp/${hostport%:*}/${hostport#*:}" || return 1
		printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$hostport" >&3
		local status
		read -r _ status _ <&3 || status=""
		exec 3>&-
		[[ "$status" == 200 ]]
	fi
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

postgres_up() {
	if have pg_isready; then
		pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2 && return 0
	fi
	(exec 3<>"/dev/tcp/$PG_HOST/$PG_PORT") 2>/dev/null
}

proc_kib() { # proc_kib PID FIELD → the field of /proc/PID/status in KiB
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || true
}

mib() { # KiB → "12.3 MiB"
	if [[ -z "$1" ]]; then
		printf 'n/a'
	else
		awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'
	fi
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a; }
load_before=$(loadavg)

# --- build ---------------------------------------------------------------
log "building latchkey and latchkey-bench into $tmp"
go build -o "$tmp/latchkey" ./cmd/latchkey
go build -o "$tmp/latchkey-bench" ./cmd/latchkey-bench
LK="$tmp/latchkey"
BENCH="$tmp/latchkey-bench"
# The argon2id benchmark runs at the end; compiled now so that it measures
# the same tree. Its failure costs only its own line.
hash_test=""
if go test -c -o "$tmp/accounts.test" ./provider/accounts/ >"$tmp/accounts-build.log" 2>&1; then
	hash_test="$tmp/accounts.test"
else
	log "could not build the provider/accounts tests; the argon2id timing will be missing"
fi

export LATCHKEY_ISSUER="$ISSUER"
export LATCHKEY_HTTP_ADDR="127.0.0.1:${HTTP_PORT}"
export LATCHKEY_ADMIN_ADDR="127.0.0.1:${ADMIN_PORT}"
export LATCHKEY_SECRET
LATCHKEY_SECRET="bench-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export LATCHKEY_ARGON2_MEMORY_KIB=19456
export LATCHKEY_ARGON2_ITERATIONS=2
export LATCHKEY_ARGON2_PARALLELISM=1
export LATCHKEY_LOG_LEVEL=warn
# The sign-in rate limits (30/min per IP, 10/15min per account by default)
# would turn the authcode scenario into a measurement of HTTP 429s: one
# benchmark user signs in hundreds of times a second from one address.
export LATCHKEY_RATE_LOGIN_IP=off
export LATCHKEY_RATE_LOGIN_ACCOUNT=off

rows="$tmp/rows.md"
notes="$tmp/notes.md"
memory="$tmp/memory.md"
: >"$rows"
: >"$notes"
: >"$memory"

# start_server BACKEND DSN: serve in the background, wait for /healthz.
start_server() {
	local backend=$1 dsn=$2
	for p in "$HTTP_PORT" "$ADMIN_PORT"; do
		port_in_use "$p" && die "port $p is already in use (set BENCH_HTTP_PORT / BENCH_ADMIN_PORT)"
	done
	export LATCHKEY_DATABASE_URL="$dsn"
	export LATCHKEY_DATA_DIR="$tmp/data-$backend"
	mkdir -p "$LATCHKEY_DATA_DIR"
	server_log="$tmp/server-$backend.log"
	"$LK" serve >"$server_log" 2>&1 &
	server_pid=$!
	local deadline=$((SECONDS + 60))
	until http_ok "$ADMIN/healthz"; do
		if ! kill -0 "$server_pid" 2>/dev/null; then
			wait "$server_pid" 2>/dev/null || true
			server_pid=""
			cat "$server_log" >&2
			die "latchkey serve ($backend) exited during startup"
		fi
		((SECONDS < deadline)) || {
			cat "$server_log" >&2
			die "latchkey serve ($backend) not healthy after 60s"
		}
		sleep 0.1
	done
}

# create_client ARGS...: prints "client_id<TAB>client_secret".
create_client() {
	"$LK" clients create --json "$@" | json_fields client_id client_secret
}

# bench_backend BACKEND DSN
bench_backend() {
	local backend=$1 dsn=$2
	log "[$backend] starting latchkey serve"
	start_server "$backend" "$dsn"
	sleep 1 # let startup garbage settle before reading the idle RSS
	local rss_idle
	rss_idle=$(proc_kib "$server_pid" VmRSS)

	local cc_id cc_secret jwt_id jwt_secret spa_id
	IFS=$'\t' read -r cc_id cc_secret < <(create_client --name bench-cc \
		--grant-type client_credentials --scope api --access-token-format opaque)
	IFS=$'\t' read -r jwt_id jwt_secret < <(create_client --name bench-cc-jwt \
		--grant-type client_credentials --scope api --access-token-format jwt)
	IFS=$'\t' read -r spa_id _ < <(create_client --name bench-spa --public --first-party \
		--redirect-uri "$REDIRECT_URI" --grant-type authorization_code --scope "openid profile email")
	# authcode-totp: its accounts are imported and enrolled (account API)
	# by latchkey-bench itself.
	local adm_id adm_secret mfa_spa_id
	IFS=$'\t' read -r adm_id adm_secret < <(create_client --name bench-admin --admin)
	IFS=$'\t' read -r mfa_spa_id _ < <(create_client --name bench-spa-mfa --public --first-party \
		--redirect-uri "$REDIRECT_URI" --grant-type authorization_code --scope "openid account:read account:write")
	[[ -n "$cc_id" && -n "$cc_secret" && -n "$jwt_id" && -n "$jwt_secret" && -n "$spa_id" ]] ||
		die "[$backend] creating the clients failed"
	# Sign-ins are spread over 32 accounts: real traffic does not sign one
	# account in 64 times at once (and a lockout counts every attempt
	# until its password is checked).
	local i users=""
	for i in $(seq 0 31); do
		printf '%s\n' "$BENCH_PASSWORD" | "$LK" users create --username "$BENCH_USER$i" \
			--email "$BENCH_USER$i@example.com" --password-stdin --email-verified --json >/dev/null ||
			die "[$backend] creating the users failed"
		users+="${users:+,}$BENCH_USER$i"
	done

	local scenario c args out errfile
	for scenario in $SCENARIOS; do
		case $scenario in
		discovery | jwks) args=() ;;
		cc-opaque | introspect) args=(-client-id "$cc_id" -client-secret "$cc_secret" -scope api) ;;
		cc-jwt) args=(-client-id "$jwt_id" -client-secret "$jwt_secret" -scope api) ;;
		authcode) args=(-public-client-id "$spa_id" -redirect-uri "$REDIRECT_URI"
			-username "$users" -password "$BENCH_PASSWORD") ;;
		authcode-totp) args=(-public-client-id "$mfa_spa_id" -redirect-uri "$REDIRECT_URI" -password "$BENCH_PASSWORD"
			-client-id "$adm_id" -client-secret "$adm_secret" -admin "$ADMIN" -mfa-users "$MFA_USERS") ;;
		*) die "unknown scenario $scenario" ;;
		esac
		for c in $CONCURRENCY; do
			log "[$backend] $scenario c=$c ($WARMUP warm-up + $DURATION)"
			out="$tmp/$backend-$scenario-$c.json"
			errfile="$tmp/$backend-$scenario-$c.err"
			if ! "$BENCH" -issuer "$ISSUER" -scenario "$scenario" -c "$c" -d "$DURATION" \
				-warmup "$WARMUP" -json "${args[@]}" >"$out" 2>"$errfile"; then
				printf '| %s | %s | %s | FAILED | | | |\n' "$backend" "$scenario" "$c" >>"$rows"
				printf -- '- %s %s c=%s failed: %s\n' "$backend" "$scenario" "$c" \
					"$(head -c 400 "$errfile" | tr '\n' ' ')" >>"$notes"
				log "[$backend] $scenario c=$c FAILED: $(head -c 400 "$errfile")"
				if ! kill -0 "$server_pid" 2>/dev/null; then
					tail -n 50 "$server_log" >&2
					die "[$backend] the server died"
				fi
				continue
			fi
			local rps p50 p99 errors
			IFS=$'\t' read -r rps p50 p99 errors < <(json_fields rps p50_ms p99_ms errors <"$out")
			printf '| %s | %s | %s | %s | %.2f ms | %.2f ms | %s |\n' \
				"$backend" "$scenario" "$c" "$(awk -v r="$rps" 'BEGIN { printf(r < 100 ? "%.1f" : "%.0f", r) }')" \
				"$p50" "$p99" "$errors" >>"$rows"
			log "[$backend] $(tail -n 1 "$rows")"
			if [[ "$errors" != 0 ]]; then
				while IFS= read -r line; do
					printf -- '- %s %s c=%s: %s\n' "$backend" "$scenario" "$c" "$line" >>"$notes"
				done < <(error_samples <"$out")
			fi
		done
	done

	local rss_now rss_peak
	rss_now=$(proc_kib "$server_pid" VmRSS)
	rss_peak=$(proc_kib "$server_pid" VmHWM)
	printf '| %s | %s | %s | %s |\n' "$backend" "$(mib "$rss_idle")" "$(mib "$rss_now")" "$(mib "$rss_peak")" >>"$memory"
	if grep -qiE '"level":"(ERROR|WARN)"|level=(ERROR|WARN)' "$server_log"; then
		printf -- '- %s: the server logged %s warnings/errors, e.g. %s\n' "$backend" \
			"$(grep -ciE '"level":"(ERROR|WARN)"|level=(ERROR|WARN)' "$server_log")" \
			"$(grep -iE '"level":"(ERROR|WARN)"|level=(ERROR|WARN)' "$server_log" | head -n 1 | head -c 300)" >>"$notes"
	fi
	log "[$backend] stopping the server"
	stop_server
}

for backend in $BACKENDS; do
	case $backend in
	sqlite)
		bench_backend sqlite "sqlite:$tmp/bench.sqlite"
		;;
	postgres)
		if ! postgres_up; then
			log "PostgreSQL is not reachable on $PG_HOST:$PG_PORT: skipping it"
			printf -- '- postgres skipped: nothing answers on %s:%s\n' "$PG_HOST" "$PG_PORT" >>"$notes"
			continue
		fi
		have psql || die "psql is needed to create the benchmark database"
		psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -v ON_ERROR_STOP=1 -qc "CREATE DATABASE $PG_DB" >/dev/null
		pg_created=1
		bench_backend postgres "postgres://$PG_USER@$PG_HOST:$PG_PORT/$PG_DB?sslmode=disable"
		drop_pg
		;;
	*) die "unknown backend $backend (want sqlite and/or postgres)" ;;
	esac
done

# Equivalent to: go test -run '^$' -bench BenchmarkArgon2idHash -benchtime 20x ./provider/accounts/
hash_ms=""
if [[ -n "$hash_test" ]]; then
	log "timing one argon2id hash (m=19456 KiB, t=2, p=1)"
	if hash_out=$("$hash_test" -test.run '^$' -test.bench 'BenchmarkArgon2idHash$' -test.benchtime 20x 2>&1); then
		hash_ms=$(awk '/^BenchmarkArgon2idHash/ { for (i = 1; i < NF; i++) if ($(i+1) == "ns/op") printf "%.1f", $i / 1e6 }' <<<"$hash_out")
	else
		printf -- '- the argon2id benchmark failed: %s\n' "$(tail -n 3 <<<"$hash_out" | tr '\n' ' ')" >>"$notes"
	fi
else
	printf -- '- the argon2id benchmark was not run: provider/accounts tests do not build: %s\n' \
		"$(head -n 3 "$tmp/accounts-build.log" | tr '\n' ' ')" >>"$notes"
fi

report() {
	echo "## Latchkey benchmark"
	echo
	echo "$(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)," \
		"$(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown))," \
		"$(go env GOVERSION). Load generator, server and PostgreSQL on the same machine."
	echo "Load average (1/5/15 min) before: $load_before; after: $(loadavg) — anything else running skews the figures."
	echo "Closed loop, $WARMUP warm-up then $DURATION per row; argon2id m=19456 KiB, t=2, p=1." \
		"authcode rows count whole sign-ins (authorize, login page, login POST, resume, code exchange); authcode-totp adds the second-factor page and its POST (a TOTP code; accounts enrolled beforehand)."
	echo
	echo "| backend | scenario | c | req/s | p50 | p99 | errors |"
	echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
	cat "$rows"
	echo
	echo "| backend | RSS idle | RSS after the run | RSS peak (VmHWM) |"
	echo "| --- | ---: | ---: | ---: |"
	cat "$memory"
	echo
	echo "One argon2id hash (BenchmarkArgon2idHash, 20 iterations): ${hash_ms:-n/a} ms"
	if [[ -s "$notes" ]]; then
		echo
		echo "Notes:"
		cat "$notes"
	fi
}

if [[ -n "${BENCH_OUT:-}" ]]; then
	report | tee "$BENCH_OUT"
else
	report
fi
