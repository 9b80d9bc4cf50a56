#!/usr/bin/env bash
# Prepares this checkout on a fresh machine: a Python venv with ampc and its pinned
# dependencies, and the Apache Kafka jars resolved from Maven Central into ~/.cache/ampc.
# Safe to run again: each step is skipped when it is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "error: '$1' is missing: $2" >&2; exit 1; }
}
need python3 "install Python 3.11 or newer"
need java "install a JDK 17 or newer (Debian: apt-get install openjdk-17-jre-headless)"
need mvn "install Maven (Debian: apt-get install maven)"

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
fi
# Reinstall only when the dependency list changed.
stamp=".venv/.ampc-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install --quiet -e ".[dev]"
  rm -f .venv/.ampc-*
  touch "$stamp"
fi
.venv/bin/ampc broker fetch

# promtool (from Debian's prometheus package, unpacked, not installed: no service is started)
# checks that the services' metrics follow Prometheus' naming rules.
promtool_dir="${HOME}/.cache/ampc/prometheus"
if [ ! -x "${promtool_dir}/usr/bin/promtool" ] && command -v apt-get >/dev/null 2>&1; then
  work="$(mktemp -d)"
  if ! (cd "$work" && apt-get download prometheus >/dev/null 2>&1); then
    apt-get update -qq >/dev/null 2>&1 || true
    (cd "$work" && apt-get download prometheus >/dev/null)
  fi
  mkdir -p "$promtool_dir"
  dpkg -x "$work"/prometheus_*.deb "$promtool_dir"
  rm -rf "$work"
fi
