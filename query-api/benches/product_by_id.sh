#!/usr/bin/env bash
# Query API benchmark: GET /products/{id} over HTTP (wrk, 32 connections)
# against pgbench running the same SELECT on the same Postgres views, in the
# same run. The baseline is pgbench at its strongest: the extended protocol
# with prepared statements (as sqlx uses), at 4, 8 and 32 connections, the
# best of the three; the simple protocol at 32 connections is shown for
# reference only.
#
#   bash query-api/benches/product_by_id.sh
#
# Needs wrk (apt-get install wrk) and pgbench; Postgres from
# BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres),
# on which it creates a database for the run. BENCH_SECONDS sets each
# phase's length (default 10). SHOP_BIN measures another build of the
# `shop` binary (an older commit's, for a before/after) instead of building
# this one.
set -euo pipefail
if [ -n "${SHOP_BIN:-}" ]; then SHOP_BIN=$(realpath "$SHOP_BIN"); fi
cd "$(dirname "$0")/../.."
seconds=${BENCH_SECONDS:-10}
server=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
command -v pgbench >/dev/null || { echo "pgbench is missing: install the Postgres client tools" >&2; exit 1; }

database="shop_bench_$(date +%s)"
psql "$server" -qc "CREATE DATABASE $database"
views="${server%/*}/$database"
work=$(mktemp -d)
trap 'kill $shop 2>/dev/null || true; wait $shop 2>/dev/null || true; psql "$server" -qc "DROP DATABASE IF EXISTS $database" || true; rm -rf "$work"' EXIT

measured="commit $(git describe --always --dirty)"
if [ -n "${SHOP_BIN:-}" ]; then
  measured="$SHOP_BIN"
else
  cargo build --release --quiet
  SHOP_BIN=$PWD/target/release/shop
fi
(cd "$work" && VIEWS_DATABASE_URL="$views" COMMAND_API_ADDR=127.0.0.1:18080 QUERY_API_ADDR=127.0.0.1:18081 \
  RUST_LOG=warn exec "$SHOP_BIN" > "$work/shop.log" 2>&1) &
shop=$!
for _ in $(seq 1 100); do
  kill -0 "$shop" 2>/dev/null || { echo "shop stopped:" >&2; cat "$work/shop.log" >&2; exit 1; }
  count=$(psql "$views" -tAc "SELECT count(*) FROM products" 2>/dev/null || echo 0)
  [ "$count" = "100" ] && break
  sleep 0.2
done
id=$(psql "$views" -tAc "SELECT product_id FROM products ORDER BY sku LIMIT 1")
curl -sf "http://127.0.0.1:18081/products/$id" > /dev/null

# The machine, the time, the load and the commit, taken before the first phase.
machine="Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'),\
 $(awk '$1 == "MemTotal:" {print int($2 / 1024 / 1024)}' /proc/meminfo) GiB; $(date -u '+%F %H:%M UTC'),\
 1-minute load $(cut -d' ' -f1 /proc/loadavg) at the start; $measured."

echo "SELECT product_id, sku, name, price_minor, available, created_at, updated_at FROM products WHERE product_id = '$id';" > "$work/select.sql"

# pgbench <protocol> <clients>: prints "tps average-latency-ms".
pgbench_phase() {
  local out
  out=$(pgbench -n -M "$1" -c "$2" -j 2 -T "$seconds" -f "$work/select.sql" "$views" 2>&1)
  echo "$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p') $(echo "$out" | sed -n 's/^latency average = \([0-9.]*\) ms/\1/p')"
}
declare -A tps latency
for clients in 4 8 32; do
  read -r "tps[prepared$clients]" "latency[prepared$clients]" <<< "$(pgbench_phase prepared "$clients")"
done
read -r "tps[simple32]" "latency[simple32]" <<< "$(pgbench_phase simple 32)"
best=prepared4
for clients in 8 32; do
  awk -v a="${tps[prepared$clients]}" -v b="${tps[$best]}" 'BEGIN { exit !(a > b) }' && best=prepared$clients
done

# wrk_phase <path> [header]: writes "requests/s p50-ms p99-ms" for 32
# connections on the query API to $work/wrk.txt; stops the run when any
# answer was not a success (a fast 401 is no throughput).
wrk_phase() {
  local out
  out=$(wrk -t2 -c32 -d"${seconds}s" --latency ${2:+-H "$2"} "http://127.0.0.1:18081$1")
  if grep -q "Non-2xx or 3xx responses" <<< "$out"; then
    echo "GET $1 got answers other than 2xx:" >&2
    echo "$out" >&2
    exit 1
  fi
  # wrk prints latencies with a unit (850.00us, 6.49ms, 1.02s): in ms.
  echo "$out" | awk '
    function ms(v,   unit) { unit = v; sub(/^[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v)
      return sprintf("%.2f", v * (unit == "us" ? 0.001 : unit == "s" ? 1000 : unit == "m" ? 60000 : 1)) }
    $1 == "Requests/sec:" { rps = $2 } $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
    END { print rps, p50, p99 }' > "$work/wrk.txt"
}
wrk_phase "/products/$id"
read -r api_rps p50 p99 < "$work/wrk.txt"

# The same read with a bearer token, on a route that checks it (GET /me):
# what verifying a token costs each request, the credential version and
# revocation lookups included (issue #16 asks that it stays cheap).
curl -sf -H 'Content-Type: application/json' -d '{"username":"bench","password":"correct horse battery","displayName":"Bench"}' \
  http://127.0.0.1:18080/auth/register > /dev/null
token=$(curl -sf -H 'Content-Type: application/json' -d '{"username":"bench","password":"correct horse battery"}' \
  http://127.0.0.1:18080/auth/login | sed -n 's/.*"accessToken":"\([^"]*\)".*/\1/p') || token=
[ -n "$token" ] || { echo "the bench user's login answered no access token" >&2; exit 1; }
for _ in $(seq 1 100); do
  curl -sf -H "Authorization: Bearer $token" http://127.0.0.1:18081/me > /dev/null && break
  sleep 0.2
done
curl -sf -H "Authorization: Bearer $token" http://127.0.0.1:18081/me > /dev/null
wrk_phase /me "Authorization: Bearer $token"
read -r me_rps me_p50 me_p99 < "$work/wrk.txt"

ratio() { awk -v a="$1" -v b="${tps[$best]}" 'BEGIN { printf "%.2f", a / b }'; }
echo "## Query API: GET /products/{id} on Postgres views"
echo
echo "$machine Each phase runs ${seconds} s."
echo
echo "| measurement | connections | requests/s | latency | ratio to baseline |"
echo "| --- | ---: | ---: | --- | ---: |"
for key in prepared4 prepared8 prepared32 simple32; do
  clients=${key//[a-z]/}
  if [ "$key" = "$best" ]; then
    name="pgbench -M prepared, the same SELECT (baseline: the best prepared)"
  elif [ "${key%%[0-9]*}" = prepared ]; then
    name="pgbench -M prepared, the same SELECT"
  else
    name="pgbench -M simple, the same SELECT (reference)"
  fi
  echo "| $name | $clients | $(printf '%.0f' "${tps[$key]}") | average ${latency[$key]} ms | $(ratio "${tps[$key]}")x |"
done
echo "| query API over HTTP (wrk) | 32 | $(printf '%.0f' "$api_rps") | p50 ${p50} ms, p99 ${p99} ms | **$(ratio "$api_rps")x** |"
echo "| query API, GET /me with a bearer token (wrk) | 32 | $(printf '%.0f' "$me_rps") | p50 ${me_p50} ms, p99 ${me_p99} ms | $(ratio "$me_rps")x |"
