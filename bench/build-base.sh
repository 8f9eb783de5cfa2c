#!/usr/bin/env bash
# Build a commit's src/ into bench/dist-base (for `npm run bench -- --baseline bench/dist-base/cli.js`).
# Usage (from the repo root): bench/build-base.sh [COMMIT=HEAD]
set -euo pipefail
REV=${1:-HEAD}; TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
git archive "$REV" src scripts tsconfig.json tsconfig.build.json package.json | tar -x -C "$TMP"
ln -s "$PWD/node_modules" "$TMP/node_modules"
# npm run build's own steps (the dashboard's files too: tsc alone leaves a build that cannot start)
(cd "$TMP" && node scripts/build.mjs)
rm -rf bench/dist-base && cp -r "$TMP/dist" bench/dist-base
echo "bench/dist-base = $(git rev-parse --short "$REV")"
