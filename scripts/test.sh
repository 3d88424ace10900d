#!/usr/bin/env bash
# Runs every check of the project: no executable binary tracked, formatting,
# the go line of every module, a build of every module by importers outside
# the repository (scripts/importcheck.sh), vet (whose stdversion check keeps
# out standard-library APIs newer than the go line), staticcheck when
# installed, the tests of every module with the race detector, govulncheck
# against a pinned copy of the Go vulnerability database, and the tests again
# with the newest Go release.
#
# Everything it fetches comes through the Go module proxy: govulncheck, the
# database (module golang.org/x/vulndb) and the newest Go toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

# No build output in git: a tracked ELF, Mach-O or PE file fails the run.
./scripts/binarycheck.sh

# The oldest Go the modules support: every go.mod says exactly this go line.
go_floor=1.25.0
# The newest Go release; the tests run on it too. GOTOOLCHAIN fetches it.
newest_go=go1.27.3
# govulncheck, built with the newest Go so that it can load its standard
# library (one built with an older Go cannot type-check a newer one).
govulncheck_version=v1.9.0
# A snapshot of the vulnerability database, so a run's verdict depends on
# the code only. MTASTS_VULNDB=latest checks against the newest snapshot.
vulndb_version=${MTASTS_VULNDB:-v0.0.0-20261105234957-e22db6528018}

# The integration tests need real servers from Debian's packages; install
# them when missing and we can (root with apt-get). Without them those tests
# skip, saying what to install.
need=()
command -v unbound >/dev/null || [ -x /usr/sbin/unbound ] || need+=(unbound)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v redis-server >/dev/null || need+=(redis-server)
command -v postmap >/dev/null || [ -x /usr/sbin/postmap ] || need+=(postfix)
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
modules=(. $(git ls-files '*/go.mod' | xargs -r -n1 dirname))

# A go line above the floor raises every importer's go line, and with it the
# GODEBUG defaults of its whole binary; a toolchain line is not needed.
# go.work (which only work inside the repository reads) keeps it too, so
# that it asks for no newer Go than the modules.
for file in $(printf '%s/go.mod ' "${modules[@]}") go.work; do
  line=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$file")
  if [ "$line" != "$go_floor" ]; then
    echo "$file: go line is \"${line}\", expected \"go $go_floor\" (a dependency may have raised it: pick an older release of it)" >&2
    exit 1
  fi
  if grep -q '^toolchain ' "$file"; then
    echo "$file: has a toolchain line; remove it" >&2
    exit 1
  fi
done

# Every module must build for a user who imports it from outside this
# repository, fetched through a module proxy: a nested module that requires
# a version of the root module that does not exist fails here.
./scripts/importcheck.sh

for mod in "${modules[@]}"; do
  echo "== module $mod"
  (
    cd "$mod"
    # vet's stdversion check reports uses of standard-library APIs newer
    # than the go line; go test's own vet subset does not include it.
    go vet ./...
    if command -v staticcheck >/dev/null; then staticcheck ./...; fi
    go test -race -count=1 ./...
  )
done

# govulncheck reads a local database as a file:// URL. The vulndb module
# holds one OSV file per advisory in data/osv, a flat directory that
# govulncheck indexes itself when it finds no index/ in it.
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
vulndb=$(cd "$tools" && go mod download -json "golang.org/x/vulndb@$vulndb_version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
osv="$vulndb/data/osv"
advisories=$(find "$osv" -maxdepth 1 -name 'GO-*.json' 2>/dev/null | wc -l)
if [ "$advisories" -lt 1000 ]; then
  # An empty directory would make every scan pass.
  echo "vulnerability database $vulndb_version: expected the advisories in $osv, found $advisories" >&2
  exit 1
fi
GOTOOLCHAIN=$newest_go GOBIN="$tools" go install "golang.org/x/vuln/cmd/govulncheck@$govulncheck_version"
for mod in "${modules[@]}"; do
  echo "== govulncheck, module $mod ($advisories advisories, golang.org/x/vulndb@$vulndb_version)"
  # Symbol scan, test files included: fails when our code can reach a
  # vulnerable function, in a dependency or in the standard library.
  (cd "$mod" && GOTOOLCHAIN=$newest_go "$tools/govulncheck" -db "file://$osv" -test ./...)
done

for mod in "${modules[@]}"; do
  echo "== module $mod, tests with $newest_go"
  (cd "$mod" && GOTOOLCHAIN=$newest_go go test -race -count=1 ./...)
done
