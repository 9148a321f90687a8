#!/usr/bin/env bash
# Load-test the order paths of a running seckill instance with wrk.
#
#   TOKEN=<admin token> wrk/run.sh [versions...]      e.g. wrk/run.sh V1 V2
#
# Without versions, every version listed by GET $BASE/healthz is run, oldest
# first. For each version a fresh goods is created through the admin API, wrk
# posts orders for it for DURATION, and a summary line is printed with the
# goods' stats read back after the run.
#
# Environment:
#   BASE         service URL, loopback only        (default http://127.0.0.1:8080)
#   TOKEN        admin token (SECKILL_ADMIN_TOKEN)  (required)
#   DURATION     wrk -d                             (default 10s)
#   CONNECTIONS  wrk -c                             (default 64)
#   THREADS      wrk -t                             (default 2)
#   STOCK        stock of each fresh goods          (default 10000000)
#   SOLD_OUT=1   create the goods with stock 0: every order answers 409
#   SETTLE       seconds to wait for the stock consumer to catch up before
#                reading the stats                   (default 15)
set -euo pipefail

BASE=${BASE:-http://127.0.0.1:8080}
BASE=${BASE%/}
TOKEN=${TOKEN:-}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
STOCK=${STOCK:-10000000}
SOLD_OUT=${SOLD_OUT:-0}
SETTLE=${SETTLE:-15}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
script="$here/order.lua"

die() { echo "run.sh: $*" >&2; exit 1; }

# --- checks -----------------------------------------------------------------

# Load goes to this machine only.
if [[ ! $BASE =~ ^https?://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]+)?$ ]]; then
  die "BASE=$BASE: only http(s)://127.0.0.1, localhost or [::1] (with an optional port) are allowed"
fi
[[ -n $TOKEN ]] || die "set TOKEN to the service's admin token (SECKILL_ADMIN_TOKEN)"
[[ $DURATION =~ ^[0-9]+[smh]?$ ]] || die "DURATION=$DURATION: use a wrk duration such as 10s or 1m"
for var in CONNECTIONS THREADS STOCK SETTLE; do
  [[ ${!var} =~ ^[0-9]+$ ]] || die "$var=${!var}: must be a non-negative integer"
done
((THREADS >= 1)) || die "THREADS must be at least 1"
((CONNECTIONS >= THREADS)) || die "CONNECTIONS ($CONNECTIONS) must be at least THREADS ($THREADS)"
if [[ $SOLD_OUT == 1 ]]; then
  STOCK=0
fi
[[ -f $script ]] || die "missing $script"
command -v curl >/dev/null || die "curl is required"

if ! command -v wrk >/dev/null; then
  echo "wrk not found; installing it with apt-get" >&2
  sudo=""
  if (($(id -u) != 0)); then
    command -v sudo >/dev/null || die "wrk is missing; install it (apt-get install wrk) and run again"
    sudo=sudo
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
  command -v wrk >/dev/null || die "could not install wrk"
fi

# --- helpers ----------------------------------------------------------------

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# api METHOD PATH EXPECTED_STATUS [JSON]: call the service, print the body,
# fail with the answer when the status differs.
api() {
  local method=$1 path=$2 want=$3 data=${4:-} code
  local args=(-sS --max-time 10 -o "$tmp/body" -w '%{http_code}' -X "$method"
    -H "Authorization: Bearer $TOKEN")
  if [[ -n $data ]]; then
    args+=(-H 'Content-Type: application/json' --data "$data")
  fi
  code=$(curl "${args[@]}" "$BASE$path") || die "$method $BASE$path failed (is the service running?)"
  [[ $code == "$want" ]] || die "$method $path answered $code, want $want: $(cat "$tmp/body")"
  cat "$tmp/body"
}

# json_get JSON KEY: a top-level scalar of a flat JSON object (quotes dropped).
json_get() {
  if command -v jq >/dev/null; then
    jq -r --arg k "$2" '.[$k]' <<<"$1"
  else
    grep -o "\"$2\":[^,}]*" <<<"$1" | head -n1 | cut -d: -f2- | tr -d '" '
  fi
}

# json_versions JSON: the "versions" array of /healthz, one per line.
json_versions() {
  if command -v jq >/dev/null; then
    jq -r '.versions[]' <<<"$1"
  else
    sed -n 's/.*"versions":\[\([^]]*\)\].*/\1/p' <<<"$1" | tr -d '" ' | tr ',' '\n' | sed '/^$/d'
  fi
}

stats_line() {
  local s=$1 out="" k
  for k in redis_stock mysql_stock mysql_sale orders stock_logs dead_letters; do
    out+="$k=$(json_get "$s" "$k") "
  done
  echo "${out% }"
}

# --- run --------------------------------------------------------------------

health=$(api GET /healthz 200)
mapfile -t served < <(json_versions "$health")
((${#served[@]} > 0)) || die "GET /healthz lists no versions: $health"

versions=("$@")
if ((${#versions[@]} == 0)); then
  versions=("${served[@]}")
fi
for v in "${versions[@]}"; do
  [[ " ${served[*]} " == *" $v "* ]] || die "version $v is not served; /healthz lists: ${served[*]}"
done

phase="stock $STOCK"
if [[ $SOLD_OUT == 1 ]]; then
  phase="sold out (stock 0)"
fi
echo "target $BASE, versions ${versions[*]}, $phase, wrk -t$THREADS -c$CONNECTIONS -d$DURATION"

summary=()
for v in "${versions[@]}"; do
  goods=$(api POST /admin/goods 201 "{\"name\":\"wrk-$v-$(date +%s)\",\"stock\":$STOCK}")
  id=$(json_get "$goods" id)
  [[ $id =~ ^[0-9]+$ ]] || die "no goods id in: $goods"

  echo
  echo "== $v: POST /order$v, goods $id =="
  WRK_PATH="/order$v" GOODS_ID="$id" \
    wrk --latency -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$script" "$BASE/order$v" |
    tee "$tmp/wrk-$v.txt"

  out="$tmp/wrk-$v.txt"
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  p50=$(awk '$1 == "50%" {print $2}' "$out")
  p99=$(awk '$1 == "99%" {print $2}' "$out")
  non2xx=$(awk -F': *' '/Non-2xx or 3xx responses/ {print $2}' "$out")
  counts=$(sed -n 's/^orders: //p' "$out")

  # Orders are accepted before their stock message is applied: wait until
  # every order has its stock log (or SETTLE runs out) before reading stats.
  stats=$(api GET "/admin/goods/$id/stats" 200)
  for ((i = 0; i < SETTLE * 2; i++)); do
    [[ $(json_get "$stats" orders) == "$(json_get "$stats" stock_logs)" ]] && break
    sleep 0.5
    stats=$(api GET "/admin/goods/$id/stats" 200)
  done

  summary+=("$(printf '%-7s %12s %10s %10s %10s  %s | %s' "$v" "${rps:-?}" "${p50:-?}" "${p99:-?}" \
    "${non2xx:-0}" "${counts:-?}" "$(stats_line "$stats")")")
done

echo
echo "== summary ($phase; non-2xx counts 409 sold_out too) =="
printf '%-7s %12s %10s %10s %10s  %s\n' version req/s p50 p99 non-2xx "wrk counts | goods stats after the run"
printf '%s\n' "${summary[@]}"
