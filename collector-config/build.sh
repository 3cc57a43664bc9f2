#!/usr/bin/env bash
# Build the custom OpenTelemetry Collector (collector-config/builder-config.yaml)
# with the OpenTelemetry Collector Builder (ocb), from Go modules, into
# .build/otelcol-optel/otelcol-optel. Runs from any directory.
#
# Cached: skipped when the manifest's sha256 (and the builder version) match
# the stamp written after the last successful build. Concurrent runs (make
# and a test session, say) wait for each other instead of building twice.
# Exit status: 0 built or up to date, 1 build failed, 3 Go is missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
manifest="$here/builder-config.yaml"
out="$root/.build/otelcol-optel"  # = dist.output_path in the manifest
binary="$out/otelcol-optel"
stamp="$out/.manifest.sha256"
log="$root/.build/builder.log"
builder_version="v0.161.0"  # keep in step with the versions in builder-config.yaml

if ! command -v go >/dev/null 2>&1; then
  echo "collector: Go is not installed (no 'go' on PATH); install Go >= 1.24 to build the test collector" >&2
  exit 3
fi

mkdir -p "$root/.build/bin"
exec 9>"$root/.build/.collector.lock"
flock 9  # released when this script exits

want="$(sha256sum "$manifest" | cut -d' ' -f1) builder $builder_version"
if [[ -x "$binary" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "collector: up to date ($binary)"
  exit 0
fi
start=$(date +%s)
builder="$root/.build/bin/builder-$builder_version"  # kept per version
if [[ ! -x "$builder" ]]; then
  echo "collector: installing the collector builder $builder_version into .build/bin"
  GOBIN="$root/.build/bin" go install "go.opentelemetry.io/collector/cmd/builder@$builder_version"
  mv "$root/.build/bin/builder" "$builder"
fi
echo "collector: building $binary (a first build downloads modules and takes minutes)"
rm -f "$stamp"
# The manifest's output_path is relative to the repository root.
(cd "$root" && "$builder" --config "$manifest" >"$log" 2>&1) || {
  echo "collector: build failed; see $log" >&2
  tail -20 "$log" >&2
  exit 1
}
if [[ ! -x "$binary" ]]; then
  echo "collector: the builder finished but $binary is missing; see $log" >&2
  exit 1
fi
echo "$want" >"$stamp"
echo "collector: built $binary in $(($(date +%s) - start)) s"
