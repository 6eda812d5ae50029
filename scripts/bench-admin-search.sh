#!/usr/bin/env bash
# Measures admin user search on PostgreSQL with a generated directory of
# BENCH_USERS users (default 1,000,000): substring queries (q=, served by
# pg_trgm GIN indexes), tier, group and role filters, through the real admin API with a
# real admin token, and prints p50/p99. Called by `make bench`.
#
#   scripts/bench-admin-search.sh
#   BENCH_USERS=200000 BENCH_DURATION=5s scripts/bench-admin-search.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

USERS=${BENCH_USERS:-1000000}
DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
CONCS=${BENCH_SEARCH_CONCURRENCY:-1 16}
HTTP_PORT=${BENCH_HTTP_PORT:-18080}
ADMIN_PORT=${BENCH_ADMIN_PORT:-18081}
PG_USER=${BENCH_PG_USER:-postgres}
DB="latchkey_search_$$"

log() { printf 'bench-search: %s\n' "$*" >&2; }
if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
	log "no PostgreSQL on 127.0.0.1:5432; skipping the admin search benchmark"
	exit 0
fi
command -v psql >/dev/null || { log "psql not found; skipping"; exit 0; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/latchkey-search.XXXXXX")
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	psql -h 127.0.0.1 -U "$PG_USER" -qc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/latchkey" ./cmd/latchkey
go build -o "$tmp/latchkey-bench" ./cmd/latchkey-bench

psql -h 127.0.0.1 -U "$PG_USER" -qc "CREATE DATABASE $DB"
export LATCHKEY_DATABASE_URL="postgres://$PG_USER@127.0.0.1:5432/$DB?sslmode=disable"
export LATCHKEY_DATA_DIR="$tmp" LATCHKEY_SECRET="bench-secret-bench-secret-bench-secret-0123"
export LATCHKEY_ISSUER="http://127.0.0.1:$HTTP_PORT" LATCHKEY_HTTP_ADDR="127.0.0.1:$HTTP_PORT"
export LATCHKEY_ADMIN_ADDR="127.0.0.1:$ADMIN_PORT" LATCHKEY_LOG_LEVEL=warn
"$tmp/latchkey" migrate up >/dev/null

log "generating $USERS users"
start=$(date +%s)
psql -h 127.0.0.1 -U "$PG_USER" -d "$DB" -v ON_ERROR_STOP=1 -q <<SQL
INSERT INTO tiers (id, name, description, is_default, created_at, updated_at) VALUES
  ('t_free', 'Free', '', TRUE, now(), now()),
  ('t_pro', 'Pro', '', FALSE, now(), now()),
  ('t_ent', 'Enterprise', '', FALSE, now(), now());
INSERT INTO users (id, username, email, email_fold, email_verified, display_name, password_hash, status, created_at, updated_at, tier_id)
SELECT 'u_' || lpad(to_hex(i), 8, '0'),
       'user' || i,
       'user' || i || '@' || (ARRAY['example.com', 'mail.test', 'corp.example'])[1 + i % 3],
       'user' || i || '@' || (ARRAY['example.com', 'mail.test', 'corp.example'])[1 + i % 3],
       i % 2 = 0,
       'User ' || substr(md5(i::text), 1, 10),
       '',
       CASE WHEN i % 50 = 0 THEN 'suspended' ELSE 'active' END,
       now() - make_interval(secs => i),
       now(),
       CASE WHEN i % 100 = 0 THEN 't_ent' WHEN i % 10 = 0 THEN 't_pro' ELSE 't_free' END
FROM generate_series(1, $USERS) AS i;
-- Groups and roles (issue 11): org > eng (10 % of users), a small group
-- (0.1 %), a role granted to org (so held by eng's members through the
-- hierarchy) and a rare role held directly by 0.01 %.
INSERT INTO groups (id, name, description, parent_id, created_at, updated_at) VALUES
  ('g_org', 'org', '', NULL, now(), now()),
  ('g_eng', 'eng', '', 'g_org', now(), now()),
  ('g_small', 'small', '', NULL, now(), now());
INSERT INTO group_members (group_id, user_id, created_at)
SELECT 'g_eng', 'u_' || lpad(to_hex(i), 8, '0'), now() FROM generate_series(1, $USERS) AS i WHERE i % 10 = 1;
INSERT INTO group_members (group_id, user_id, created_at)
SELECT 'g_small', 'u_' || lpad(to_hex(i), 8, '0'), now() FROM generate_series(1, $USERS) AS i WHERE i % 1000 = 7;
INSERT INTO roles (id, name, description, created_at, updated_at) VALUES
  ('r_editor', 'editor', '', now(), now()), ('r_rare', 'rare', '', now(), now());
INSERT INTO group_roles (group_id, role_id, created_at) VALUES ('g_org', 'r_editor', now());
INSERT INTO user_roles (user_id, role_id, created_at)
SELECT 'u_' || lpad(to_hex(i), 8, '0'), 'r_rare', now() FROM generate_series(1, $USERS) AS i WHERE i % 10000 = 3;
ANALYZE users;
ANALYZE group_members;
ANALYZE user_roles;
SQL
log "generated in $(( $(date +%s) - start ))s"

"$tmp/latchkey" serve >"$tmp/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$ADMIN_PORT/healthz" >/dev/null && break; sleep 0.1; done
admin=$("$tmp/latchkey" clients create --admin --json)
id=$(printf '%s' "$admin" | sed -n 's/.*"client_id": *"\([^"]*\)".*/\1/p')
secret=$(printf '%s' "$admin" | sed -n 's/.*"client_secret": *"\([^"]*\)".*/\1/p')

run() {
	local name=$1 queries=$2 c
	for c in $CONCS; do
		run1 "$name" "$queries" "$c"
	done
}

run1() {
	local name=$1 queries=$2 CONC=$3 out
	out=$("$tmp/latchkey-bench" -issuer "$LATCHKEY_ISSUER" -admin "http://127.0.0.1:$ADMIN_PORT" -scenario admin-search \
		-client-id "$id" -client-secret "$secret" -scope admin -admin-queries "$queries" \
		-c "$CONC" -d "$DURATION" -warmup "$WARMUP" -json)
	printf '%s' "$out" | python3 -c '
import json, sys
r = json.load(sys.stdin)
name = sys.argv[1]
print("| {} | {} | {:.0f} | {:.2f} ms | {:.2f} ms | {} |".format(name, r["concurrency"], r["rps"], r["p50_ms"], r["p99_ms"], r["errors"]))
' "$name"
}

echo
echo "## Admin user search, PostgreSQL, $USERS users"
echo
echo "$(nproc) CPUs, load generator, server and PostgreSQL on one machine; limit=50 per page."
echo
echo "| query | c | req/s | p50 | p99 | errors |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
run "substring q (username, email, name)" "q=user4242&limit=50|q=9f3a2&limit=50|q=corp.exam&limit=50|q=ser77777&limit=50|q=User%20a1b&limit=50"
run "substring q, rare match" "q=user999999&limit=50|q=zzzz&limit=50|q=user12345@&limit=50"
run "tier filter" "tier=t_pro&limit=50|tier=t_ent&limit=50|tier=t_ent&status=active&limit=50"
run "tier filter + q" "tier=t_ent&q=user1&limit=50|tier=t_pro&q=mail.test&limit=50"
run "newest first, no filter" "limit=50"
run "group filter, 10 % (through a subgroup)" "group=g_org&limit=50|group=g_eng&limit=50"
run "group filter, 0.1 %" "group=g_small&limit=50"
run "role filter (through groups, or rare and direct)" "role=r_editor&limit=50|role=r_rare&limit=50"
run "group + role + status + q" "group=g_eng&role=r_editor&status=active&q=user1&limit=50|group=g_small&status=active&limit=50"
