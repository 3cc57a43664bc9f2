#!/usr/bin/env bash
# Build the custom OpenTelemetry Collector (collector-config/builder-config.yaml)
# with the OpenTelemetry Collector Builder, from Go modules, into .build/.
# Cached: rebuilt only when the manifest (sha256) or the builder version changes. Exit 3 when Go is missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
manifest="$here/builder-config.yaml"
out="$root/.build/otelcol-optel"
binary="$out/otelcol-optel"
stamp="$out/.manifest.sha256"
builder_version="v0.161.0"  # keep in step with the versions in builder-config.yaml

if ! command -v go >/dev/null 2>&1; then
  echo "collector: Go is not installed; install Go to build the test collector" >&2
  exit 3
fi
want="$(sha256sum "$manifest" | cut -d' ' -f1) builder $builder_version"
if [[ -x "$binary" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "collector: up to date ($binary)"
  exit 0
fi
start=$(date +%s)
mkdir -p "$root/.build/bin"  # builder binaries are kept per version
builder="$root/.build/bin/builder-$builder_version"
if [[ ! -x "$builder" ]]; then
  echo "collector: installing the collector builder $builder_version"
  GOBIN="$root/.build/bin" go install "go.opentelemetry.io/collector/cmd/builder@$builder_version"
  mv "$root/.build/bin/builder" "$builder"
fi
echo "collector: building $binary (first build takes minutes)"
(cd "$root" && "$builder" --config "$manifest" --output-path "$out" >"$root/.build/builder.log" 2>&1) || {
  echo "collector: build failed; see $root/.build/builder.log" >&2
  tail -20 "$root/.build/builder.log" >&2
  exit 1
}
echo "$want" >"$stamp"
echo "collector: built in $(( $(date +%s) - start )) s"
