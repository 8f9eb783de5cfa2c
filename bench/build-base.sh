#!/usr/bin/env bash
# Build a commit's src/ into bench/dist-base (for `npm run bench -- --baseline bench/dist-base/cli.js`).
# Usage (from the repo root): bench/build-base.sh [COMMIT=HEAD]
set -euo pipefail
REV=${1:-HEAD}; TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
# scripts/build.mjs as npm run build does: tsc alone leaves out the dashboard's files, and the admin server refuses to start without them.
git archive "$REV" src scripts tsconfig.json tsconfig.build.json package.json | tar -x -C "$TMP"
ln -s "$PWD/node_modules" "$TMP/node_modules"
(cd "$TMP" && node scripts/build.mjs)
rm -rf bench/dist-base && cp -r "$TMP/dist" bench/dist-base
echo "bench/dist-base = $(git rev-parse --short "$REV")"
