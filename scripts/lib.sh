# Shared by scripts/play and scripts/test: where builds go, and installing what the project needs
# on a fresh machine (the wasm32-wasip2 target, Azurite). Every step is skipped when done already.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export HEIMDALL_CACHE="${HEIMDALL_CACHE:-$HOME/.cache/heimdall}"
# Build outputs live outside the clone, so a fresh clone reuses them and CI skips done work.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HEIMDALL_CACHE/target}"
export HEIMDALL_WASM_DIR="$CARGO_TARGET_DIR/wasm32-wasip2/component"
export HEIMDALL_AZURITE="$HEIMDALL_CACHE/node/node_modules/.bin/azurite"
COMPONENTS=(-p heimdall-interactions -p heimdall-reactions -p heimdall-scaler)
cd "$ROOT"

say() { printf '\n== %s\n' "$*" >&2; }

# Cargo decides what to rebuild from file times, not from the checkout's path, yet our tests and
# tools embed their checkout's path (env!("CARGO_MANIFEST_DIR"), to find the contracts, say).
# When the shared build cache was last filled from another checkout of the same sources, its
# outputs would point there: make cargo rebuild this checkout's crates (dependencies stay). A
# cache of unknown origin (filled before this check existed) is treated the same way.
claim_build_cache() {
  local stamp="$CARGO_TARGET_DIR/.heimdall-checkout" last=""
  [ -f "$stamp" ] && last="$(cat "$stamp")"
  if [ "$last" != "$ROOT" ] && [ -d "$CARGO_TARGET_DIR/debug" ]; then
    say "the build cache was last used from ${last:-another checkout}; rebuilding this checkout's crates"
    git ls-files -z -- '*.rs' | xargs -0 -r touch --
  fi
  mkdir -p "$CARGO_TARGET_DIR"
  printf '%s\n' "$ROOT" >"$stamp"
}
claim_build_cache

ensure_wasm_target() {
  if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    say "installing the wasm32-wasip2 target"
    rustup target add wasm32-wasip2
  fi
}

# Azurite from npm, at the version pinned in dev/azurite/package-lock.json.
ensure_azurite() {
  local dir="$HEIMDALL_CACHE/node" stamp
  stamp="$(sha256sum dev/azurite/package-lock.json | cut -c1-16)"
  if [ -x "$HEIMDALL_AZURITE" ] && [ -f "$dir/.lock-$stamp" ]; then
    return
  fi
  say "installing Azurite (npm)"
  mkdir -p "$dir"
  cp dev/azurite/package.json dev/azurite/package-lock.json "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  rm -f "$dir"/.lock-*
  touch "$dir/.lock-$stamp"
}

# Prints the Spin that the sandbox will use ("Spin 3.6.3"), or fails when there is none; the
# sandbox's own check (dev/sandbox/src/spin.rs) decides, this only reports.
spin_found() {
  local spin="${HEIMDALL_SPIN:-$(command -v spin || true)}" version
  [ -n "$spin" ] || return 1
  version="$("$spin" --version 2>/dev/null | sed -n 's/^spin \([0-9][^ ]*\).*/\1/p')"
  [ -n "$version" ] && echo "Spin $version"
}

build_components() {
  say "building the components (wasm32-wasip2, profile component)"
  cargo build --locked --profile component --target wasm32-wasip2 "${COMPONENTS[@]}"
}
