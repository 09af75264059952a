#!/usr/bin/env bash
# Builds the example plugins from source (AssemblyScript, from the npm registry) into plugins/examples/out/*.wasm.
# Signing is separate (clippybot-plugin sign), so the same build can be signed by any key. Used by the tests.
set -euo pipefail
cd "$(dirname "$0")"
[ -d node_modules/assemblyscript ] || npm install --no-audit --no-fund --no-package-lock --silent >/dev/null
mkdir -p out
for plugin in counter fetcher; do
  npx --no-install asc "$plugin/index.ts" --outFile "out/$plugin.wasm" --runtime stub --use abort="$plugin/index/abort" \
    --optimize --noAssert >/dev/null
  cp "$plugin/manifest.json" "out/$plugin.manifest.json"
done
echo "built: $(ls out/*.wasm | tr '\n' ' ')"
