#!/usr/bin/env bash
# Fails when git tracks an executable binary (ELF, Mach-O or PE): a build
# artefact such as a `go build` output in cmd/mtasts makes every clone carry
# megabytes that nobody needs. It reads the first bytes of every tracked file
# as the index holds it: from the working tree when the file there is
# unchanged (one od per file, cheap), from git otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

# Tracked files whose working-tree copy differs from the index, or is gone.
declare -A changed=()
while IFS= read -r -d '' f; do changed[$f]=1; done < <(git diff --name-only -z)

# hexbytes OFFSET COUNT sets hex to COUNT bytes of the current file from
# OFFSET as lowercase hex, without spaces (a variable rather than output, to
# spare a subshell per file).
hexbytes() {
  if [ -n "${changed[$f]:-}" ]; then
    # A process substitution, so that git's SIGPIPE when od has read enough
    # does not count as a failure under pipefail.
    hex=$(od -An -tx1 -j "$1" -N "$2" < <(git cat-file blob "$blob") 2>/dev/null) || hex=
  else
    # Fails when OFFSET is past the end: then there is nothing to match.
    hex=$(od -An -tx1 -j "$1" -N "$2" -- "$f" 2>/dev/null) || hex=
  fi
  hex=${hex//[[:space:]]/}
}

found=()
# Each entry of the index: "mode object stage<TAB>path".
while IFS=$'\t' read -r -d '' meta f; do
  mode=${meta%% *}
  blob=${meta#* }
  blob=${blob%% *}
  # Only regular files: symlinks (120000) and submodules (160000) have no
  # contents of their own here.
  [ "$mode" = 100644 ] || [ "$mode" = 100755 ] || continue
  kind=
  hexbytes 0 4
  case $hex in
    7f454c46) kind=ELF ;;
    # Mach-O, 32 and 64 bits, either byte order, and universal (fat) files.
    feedface | feedfacf | cefaedfe | cffaedfe | cafebabe | bebafeca) kind=Mach-O ;;
    4d5a*)
      # A DOS header ("MZ") whose e_lfanew field, at offset 0x3c, points at
      # the "PE\0\0" signature: a Windows executable. A text file that
      # merely begins with "MZ" does not match.
      hexbytes 60 4
      if [ ${#hex} = 8 ]; then
        hexbytes $((16#${hex:6:2}${hex:4:2}${hex:2:2}${hex:0:2})) 4 # little-endian
        if [ "$hex" = 50450000 ]; then kind=PE; fi
      fi
      ;;
  esac
  if [ -n "$kind" ]; then
    found+=("$f ($kind)")
  fi
done < <(git ls-files -s -z)

if [ ${#found[@]} -gt 0 ]; then
  for f in "${found[@]}"; do
    echo "tracked executable binary: $f; build output does not belong in git: git rm --cached it and add it to .gitignore" >&2
  done
  exit 1
fi
