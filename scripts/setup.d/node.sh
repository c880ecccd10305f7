# shellcheck shell=bash
# Node binding setup (sourced by scripts/setup.sh --bindings): Node >= 20 and the npm dev
# dependencies of node/ (typescript, @types/node, eslint) from the committed package-lock.json.
# Idempotent: npm ci runs only when node/node_modules is missing or older than the lock file.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  die "the Node binding needs node (>= 20) and npm; install Node.js first"
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 20)) || die "the Node binding needs Node >= 20 (found $(node --version))"
node_dir="$ROOT/node"
if [[ ! -f $node_dir/node_modules/.package-lock.json || $node_dir/package-lock.json -nt $node_dir/node_modules/.package-lock.json ]]; then
  installing "node/ dev dependencies (npm ci)"
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1) || die "npm ci in node/ failed"
  installed_ok "node/ dev dependencies"
else
  ok "node $(node --version), node/ dev dependencies"
fi
