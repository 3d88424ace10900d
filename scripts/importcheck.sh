#!/usr/bin/env bash
# Builds programs that import this repository's modules from outside it, the
# way a user's `go get` fetches them, so that a nested module that only
# builds inside the repository (a requirement on a version of the root module
# that does not exist, made to work here by a replace directive, which Go
# ignores in a dependency) fails here rather than for every user.
#
# The modules come from a file:// module proxy folder made from this
# checkout in a temporary directory (scripts/modproxy writes the zips):
#   - the root module at each version a nested module requires: a release
#     tag, or a pseudo-version of a commit in HEAD's history;
#   - every module at HEAD's pseudo-version, holding the working tree's
#     tracked files (uncommitted changes included, untracked files not).
# Importers are built, each in its own module outside the repository
# (GOWORK=off, so go.work does not apply): one requiring every module at
# HEAD's version and using the root package, cache, tlsrpt, mtaststest and
# redisstore; one per nested module requiring only it, which must then
# build with the root module at the version it requires, as
# `go get github.com/mtasts-go/mtasts/redisstore` gives a user; and
# `go install` of cmd/mtasts at HEAD's version, as `go run ...@latest` does.
# It also checks that go.work uses every module and points each required
# version of the root module at the local tree, and that every module loads
# with GOWORK=off from its own go.sum.
#
# Other dependencies come from the local module cache or, when missing
# there, through the Go module proxy already configured (go env GOPROXY);
# they are checked against the hashes in the repository's go.sum files.
# The check's own module cache is temporary, so that its versions, made
# from a working tree, never reach the shared cache.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
# The go command makes the module cache read-only.
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
proxy=$work/proxy
# MTASTS_MODPROXY=DIR keeps the proxy folder in DIR, which must not exist,
# e.g. to update a nested module's go.sum with `GOWORK=off go mod tidy`
# through it before its commit is published (docs/contributing.md shows
# how, under "go.work and the import check").
if [ -n "${MTASTS_MODPROXY:-}" ]; then
  mkdir "$MTASTS_MODPROXY"
  proxy=$(cd "$MTASTS_MODPROXY" && pwd)
fi
failed=0
fail() {
  echo "importcheck: $*" >&2
  failed=1
}

root=$(awk '$1 == "module" { print $2; exit }' go.mod)
nested=($(git ls-files '*/go.mod' | xargs -r -n1 dirname))

# pseudo REV [TAGPREFIX] prints the version Go gives commit REV of the module
# whose release tags are TAGPREFIX followed by a semantic version (the
# nested module in folder d has tags "d/v1.2.3"): the tag itself when REV
# is tagged, otherwise a pseudo-version after the latest tag in REV's
# history, or after v0.0.0 when there is none. The time is the commit's
# committer time in UTC, the hash its first 12 hex digits.
pseudo() {
  local rev=$1 tagprefix=${2:-} t hash tag v
  t=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S "$rev")
  hash=$(git rev-parse "$rev^{commit}")
  hash=${hash:0:12}
  tag=$(git describe --tags --abbrev=0 --match "${tagprefix}v[0-9]*" "$rev" 2>/dev/null) || tag=
  v=${tag#"$tagprefix"}
  if [ -z "$tag" ]; then
    echo "v0.0.0-$t-$hash"
  elif [ "$(git rev-parse "$tag^{commit}")" = "$(git rev-parse "$rev^{commit}")" ]; then
    echo "$v"
  elif [[ $v == *-* ]]; then
    echo "$v.0.$t-$hash" # after a pre-release: vX.Y.Z-pre.0.time-hash
  else
    local patch=${v##*.}
    echo "${v%.*}.$((patch + 1))-0.$t-$hash" # vX.Y.(Z+1)-0.time-hash
  fi
}

go vet scripts/modproxy/main.go
go build -o "$work/modproxy" scripts/modproxy/main.go

# publish REV TIMEREV SUBDIR VERSION adds VERSION of the module in folder
# SUBDIR ("" for the root) to the proxy, with the files of commit REV and
# the time of commit TIMEREV. git archive runs as the go command runs it on
# a repository, so that the zip's hash is the one users will see.
declare -A published=()
publish() {
  local rev=$1 timerev=$2 subdir=$3 version=$4
  [ -z "${published[$subdir@$version]:-}" ] || return 0
  published[$subdir@$version]=1
  git -c core.autocrlf=input -c core.eol=lf archive --format=tar "$rev" |
    "$work/modproxy" -proxy "$proxy" -subdir "$subdir" -version "$version" \
      -time "$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ "$timerev")" >/dev/null
}

# The versions of the root module that the nested modules require.
declare -A wanted=()
for dir in "${nested[@]}"; do
  if awk -v m="$root" '/=>/ && ($1 == m || ($1 == "replace" && $2 == m))' "$dir/go.mod" | grep -q .; then
    fail "$dir/go.mod replaces $root: Go ignores replace directives in a dependency, so importers do not get it; go.work points work inside the repository at the local tree"
  fi
  want=$(awk -v m="$root" '$1 == m && $2 ~ /^v/ { print $2 } $1 == "require" && $2 == m { print $3 }' "$dir/go.mod")
  [ -n "$want" ] || continue
  wanted[$want]="${wanted[$want]:+${wanted[$want]} and }$dir/go.mod"
  rev=
  if git rev-parse -q --verify "refs/tags/$want^{commit}" >/dev/null; then
    rev=refs/tags/$want
  elif [[ $want =~ [.-]([0-9]{14})-([0-9a-f]{12})$ ]]; then
    hash=${BASH_REMATCH[2]}
    if ! rev=$(git rev-parse -q --verify "$hash^{commit}"); then
      fail "$dir/go.mod requires $root $want, whose commit $hash is not in this clone (a shallow clone? git fetch --unshallow)"
      rev=
    elif [ "$(pseudo "$rev")" != "$want" ]; then
      fail "$dir/go.mod requires $root $want, but Go names commit $hash $(pseudo "$rev"): the module proxy would refuse the version"
    elif ! git merge-base --is-ancestor "$rev" HEAD; then
      fail "$dir/go.mod requires $root $want, whose commit $hash is not in HEAD's history: require a commit on main, where it stays"
    fi
  else
    fail "$dir/go.mod requires $root $want, which is neither a release tag nor a pseudo-version of a commit of this repository: no importer can fetch it"
  fi
  if [ -n "$rev" ]; then
    publish "$rev" "$rev" "" "$want"
  fi
done

# go.work: every module in the workspace, and each version of the root
# module that a nested module requires pointed at the local tree (in a
# workspace Go still reads that version's go.mod).
if [ -f go.work ]; then
  for dir in . "${nested[@]}"; do
    if ! awk -v d="$dir" '{ sub(/\/\/.*/, "") } $1 == d || $1 == "./" d || ($1 == "use" && ($2 == d || $2 == "./" d))' go.work | grep -q .; then
      fail "go.work does not use $dir: run go work use $dir"
    fi
  done
  for v in "${!wanted[@]}"; do
    if ! awk -v m="$root" -v v="$v" '{ sub(/\/\/.*/, "") } /=>/ && (($1 == m && $2 == v) || ($1 == "replace" && $2 == m && $3 == v))' go.work | grep -q .; then
      fail "go.work does not replace $root $v, which ${wanted[$v]} requires: add replace $root $v => ./"
    fi
  done
fi

# Every module at HEAD's version, from the working tree's tracked files.
tree=$(git stash create)
tree=${tree:-HEAD}
head_version=$(pseudo HEAD)
publish "$tree" HEAD "" "$head_version"
declare -A head_versions=()
for dir in "${nested[@]}"; do
  head_versions[$dir]=$(pseudo HEAD "$dir/")
  publish "$tree" HEAD "$dir" "${head_versions[$dir]}"
done

# The importers' environment: outside any workspace, our modules from the
# folder, the rest from the local module cache (whose download folder is
# laid out as a proxy) or the configured proxy.
cache=$(go env GOMODCACHE)
upstream=$(go env GOPROXY)
export GOWORK=off GOFLAGS=-mod=mod GOSUMDB=off GOPRIVATE= GONOPROXY= GONOSUMDB=
export GOMODCACHE=$work/modcache
export GOPROXY="file://$proxy,file://$cache/cache/download,$upstream"

# importer NAME MODULE@VERSION... IMPORT[:IDENT]... makes a module NAME that
# requires the modules and whose main.go imports each IMPORT, using its
# exported IDENT (or only for its side effects, compiling it all the same),
# and builds it. The repository's go.sum lines check the other dependencies.
importer() {
  local name=$1 dir=$work/$1
  shift
  local gets=() uses=()
  for arg; do
    case $arg in
      *@*) gets+=("$arg") ;;
      *) uses+=("$arg") ;;
    esac
  done
  mkdir -p "$dir"
  printf 'module example.com/%s\n\ngo 1.25.0\n' "$name" >"$dir/go.mod"
  sort -u go.sum $(printf '%s/go.sum ' "${nested[@]}") >"$dir/go.sum"
  {
    echo "// Command $name uses one exported identifier of each package it imports."
    echo "package main"
    echo
    echo "import ("
    local i use
    for i in "${!uses[@]}"; do
      use=${uses[$i]}
      if [[ $use == *:* ]]; then echo "	p$i \"${use%%:*}\""; else echo "	_ \"$use\""; fi
    done
    echo ")"
    echo
    for i in "${!uses[@]}"; do
      use=${uses[$i]}
      if [[ $use == *:* ]]; then echo "var _ = p$i.${use#*:}"; fi
    done
    echo
    echo "func main() {}"
  } >"$dir/main.go"
  echo "== importer $name: go get ${gets[*]}"
  local out
  if ! out=$(cd "$dir" && go get "${gets[@]}" 2>&1 && go build -o "$work/$name.bin" . 2>&1); then
    echo "$out" >&2
    fail "importer $name (requiring ${gets[*]}) does not build"
    return 0
  fi
  (cd "$dir" && go list -m all | grep -F "$root" | sed 's/^/   built with /')
}

# One exported identifier of each nested module, for the first importer;
# a module not listed here is imported for its side effects.
declare -A nested_ident=([redisstore]=New)

every=("$root@$head_version")
uses=("$root:ParsePolicy" "$root/cache:New" "$root/tlsrpt:ParseReport" "$root/mtaststest:NewResolver")
for dir in "${nested[@]}"; do
  every+=("$root/$dir@${head_versions[$dir]}")
  uses+=("$root/$dir${nested_ident[$dir]:+:${nested_ident[$dir]}}")
done
importer every "${every[@]}" "${uses[@]}"
if [ -f "$work/every.bin" ] && [ "$(cd "$work/every" && go list -m -f '{{.Version}}' "$root" 2>/dev/null)" != "$head_version" ]; then
  fail "importer every did not get $root $head_version: a nested module requires a later version than HEAD's"
fi

# Each nested module alone: it must build with the root module at the
# version it requires, as a user's go get of it alone gives.
for dir in "${nested[@]}"; do
  importer "only-${dir//\//-}" "$root/$dir@${head_versions[$dir]}" "$root/$dir"
done

# The command, as `go run github.com/mtasts-go/mtasts/cmd/mtasts@latest`
# builds it outside any module (which refuses a go.mod with a replace).
echo "== go install $root/cmd/mtasts@$head_version"
if ! out=$(cd "$work" && GOBIN=$work/bin go install "$root/cmd/mtasts@$head_version" 2>&1); then
  echo "$out" >&2
  fail "go install $root/cmd/mtasts@$head_version fails"
fi

# Each module as the main module without the workspace, as a contributor
# with GOWORK=off has it: its go.sum must hold every line its build and tests
# need (the workspace lets one module's go.sum lines cover another's).
for dir in . "${nested[@]}"; do
  echo "== GOWORK=off, module $dir"
  if ! out=$(cd "$dir" && GOFLAGS=-mod=readonly go list -deps -test ./... 2>&1 >/dev/null); then
    echo "$out" >&2
    fail "module $dir does not load with GOWORK=off (missing go.sum lines? docs/contributing.md shows how to add them, under \"go.work and the import check\")"
  fi
done

if [ "$failed" != 0 ]; then
  exit 1
fi
echo "importcheck: every module builds from outside the repository"
