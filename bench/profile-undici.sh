#!/usr/bin/env bash
# CPU profile of the bare undici proxy (scripts/bench.mjs --role undici-proxy) under the same load as bench/profile.sh,
# for bench/compare-profiles.mjs. Usage (from the repo root): bench/profile-undici.sh [outdir=/tmp/prof-u]
set -uo pipefail
OUT=${1:-/tmp/prof-u}; BENCH=/work/shared/bench; PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done; }
trap cleanup EXIT
mkdir -p "$OUT"
for p in 18081 18082 18083; do
  d=/tmp/prof-backend-$p; mkdir -p "$d/tmp"; sed "s/@PORT@/$p/g" $BENCH/nginx-backend.conf.in >"$d/nginx.conf"
  taskset -c 1 nginx -p "$d/" -c "$d/nginx.conf" -e "$d/error.log" & PIDS+=($!)
done
taskset -c 1 node --cpu-prof --cpu-prof-dir="$OUT" scripts/bench.mjs --role undici-proxy 18099 127.0.0.1:18081,127.0.0.1:18082,127.0.0.1:18083 >/tmp/undici-prof.log 2>&1 & FP=$!
for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:18099/ && break; sleep 0.2; done
taskset -c 0 wrk -t1 -c50 -d10s http://127.0.0.1:18099/
kill -TERM $FP; wait $FP; echo "exit=$?"
