#!/usr/bin/env bash
# Measures "mtasts postfix" against Debian's postfix-mta-sts-resolver
# (mta-sts-daemon) over Postfix's socketmap protocol: cached answers with 1
# and 64 connections, cold lookups, memory per cached domain, and queries
# for domains without MTA-STS. See scripts/postfixbench for what each
# figure is; docs/postfix.md holds the last run's table.
#
# Runs as root: the measurement runs in a private network and mount
# namespace, where the test kit's DNS server and policy host listen on
# 127.0.0.1:53 and :443 and a resolv.conf naming them is bind-mounted;
# nothing is reachable from, or changed on, the host's network.
#
#   scripts/bench-postfix.sh [-domains 10000,100000] [-duration 3s -rounds 5]
#
# Without mta-sts-daemon (apt-get install postfix-mta-sts-resolver), it
# measures mtasts alone.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "bench-postfix: needs root, for a private network namespace" >&2
  exit 1
fi
peer=$(command -v mta-sts-daemon || true)
if [ -z "$peer" ]; then
  echo "bench-postfix: mta-sts-daemon not found (apt-get install postfix-mta-sts-resolver); measuring mtasts alone" >&2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/mtasts" ./cmd/mtasts
go build -o "$work/postfixbench" ./scripts/postfixbench

echo "date: $(date -u +%Y-%m-%d), host: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(uname -sr)" >&2
if [ -n "$peer" ]; then
  echo "peer: postfix-mta-sts-resolver $(dpkg-query -W -f '${Version}' postfix-mta-sts-resolver 2>/dev/null || echo '?')" >&2
fi
"$work/postfixbench" -mtasts "$work/mtasts" -peer "$peer" "$@"
