#!/usr/bin/env bash
# Runs every check of the project: formatting, vet, staticcheck when
# installed, and the tests of every module with the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."

# The integration tests need real servers from Debian's packages; install
# them when missing and we can (root with apt-get). Without them those tests
# skip, saying what to install.
need=()
command -v unbound >/dev/null || [ -x /usr/sbin/unbound ] || need+=(unbound)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v redis-server >/dev/null || need+=(redis-server)
if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" $unformatted >&2
  exit 1
fi

# The root module, then each nested module (they keep their own
# dependencies out of the root's go.mod).
for mod in . $(git ls-files '*/go.mod' | xargs -r -n1 dirname); do
  echo "== module $mod"
  (
    cd "$mod"
    go vet ./...
    if command -v staticcheck >/dev/null; then staticcheck ./...; fi
    go test -race -count=1 ./...
  )
done
