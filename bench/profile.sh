#!/usr/bin/env bash
# CPU profile of Fulcrum under load: 3 nginx backends (18081-18083, like run.sh),
# Fulcrum with --cpu-prof on PORT=18099 (config $1, default bench/fulcrum-bench.yaml),
# wrk -t1 -c50 -d10s, SIGTERM -> profile in /tmp/prof. Stops only the PIDs it started.
# Usage (from /work/main): bench/profile.sh [config] [outdir]
# PROXY=undici profiles the bare undici proxy of scripts/bench.mjs instead (config ignored), under
# the same load, for bench/compare-profiles.mjs.
set -uo pipefail
CFG=${1:-bench/fulcrum-bench.yaml}; OUT=${2:-/tmp/prof}; CLI=${CLI:-dist/cli.js}
BENCH=/work/shared/bench; PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done; }
trap cleanup EXIT
mkdir -p "$OUT"
for p in 18081 18082 18083; do
  d=/tmp/prof-backend-$p; mkdir -p "$d/tmp"; sed "s/@PORT@/$p/g" $BENCH/nginx-backend.conf.in >"$d/nginx.conf"
  taskset -c 1 nginx -p "$d/" -c "$d/nginx.conf" -e "$d/error.log" & PIDS+=($!)
done
if [ "${PROXY:-fulcrum}" = undici ]; then
  taskset -c 1 node --cpu-prof --cpu-prof-dir="$OUT" scripts/bench.mjs --role undici-proxy 18099 127.0.0.1:18081,127.0.0.1:18082,127.0.0.1:18083 >/tmp/undici-prof.log 2>&1 & FP=$!
else
  PORT=18099 taskset -c 1 node --cpu-prof --cpu-prof-dir="$OUT" $CLI --config "$CFG" >/tmp/fulcrum-prof.log 2>&1 & FP=$!
fi
for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:18099/ && break; sleep 0.2; done
taskset -c 0 wrk -t1 -c50 -d10s http://127.0.0.1:18099/
kill -TERM $FP; wait $FP; echo "proxy exit=$?"
ls -t "$OUT"/*.cpuprofile | head -1
