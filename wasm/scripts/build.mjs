// Builds the npm package: cargo (Debian's toolchain, -Zbuild-std, target-wasm/) -> wasm-opt
// (npm binaryen) -> wasm-bindgen --target nodejs and --target web -> the facade wrappers.
// Usage: node scripts/build.mjs [--skip-cargo]. Prints the optimized and gzipped sizes and
// writes them to dist/size.json. Fails when the optimized .wasm exceeds 600 KB.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const pkg = dirname(dirname(fileURLToPath(import.meta.url)));
const root = dirname(pkg);
const dist = join(pkg, 'dist');
const targetDir = process.env.BATON_WASM_TARGET_DIR || join(root, 'target-wasm');
const rawWasm = join(targetDir, 'wasm32-unknown-unknown', 'release', 'baton_wasm.wasm');
const LIMIT = 600 * 1024;

function run(cmd, args, opts = {}) {
  console.log(`$ ${cmd} ${args.join(' ')}`);
  execFileSync(cmd, args, { stdio: 'inherit', ...opts });
}

// Optimization levels (measured 2026-11-22, `toolSync` + one subscriber, flush every 100 calls,
// medians of 3 interleaved runs on this 2-core VM; the whole module is z unless said):
//   z + wasm-opt -Oz (the default)                       593.3 KB   8.0 µs
//   wasm-opt -Os / -O2 / -O3 instead of -Oz              598.1 / 616.8 / 607.4 KB, not faster
//   package baton at opt-level 3 (the rest z)            905.7 KB   6.1 µs (the core's drain halves)
//   package baton at "s" (same as the whole module at s) 652.6 KB   7.3 µs
//   baton with -Cllvm-args=-inline-threshold=40 / 75     610.2 / 623.4 KB, ~7.3–8 µs
//   dlmalloc + alloc at opt-level 3                      596.8 KB   7.6 µs (within the noise)
//   std without optimize_for_size                        625.6 KB
//   without bulk memory (memcpy instead of memory.copy)  593.0 KB   slower (8.4–11.8 µs)
//   #[optimize(speed)] (nightly) on ~20 functions of the event path  +7 KB, ~3% faster
//   wasm-opt --low-memory-unused (what the build uses)  -5.1 KB, speed unchanged (A/B 1.00)
// Nothing under the 600 KB limit was measurably faster, so the size profile stays.
// All of the above were measured WITHOUT link-time optimization: until 2026-11-23 the crate also
// built an rlib, and cargo passes no `-C lto` to a crate with an rlib among its crate types, so
// `CARGO_PROFILE_RELEASE_LTO` below did nothing. With the crate a cdylib only (fat LTO for real):
// 550.6 KB instead of 596.5 KB, and same-process A/B against the module without LTO: async tool
// 0.896, toolSync 0.906, stream chunk 0.916, full chain 0.840 (wasm.md, session 15).
// --low-memory-unused tells wasm-opt that addresses below 1 KB are never used, so it may fold
// a constant added to a pointer into the load's offset. That only changes what happens when
// an address computation wraps around past 4 GiB into the first KB: Rust's safe code never
// computes one, the data segments start at 1 MiB, and the stack comes first in memory and
// grows down from 1 MiB, so its lowest KB is reached only by a stack about to overflow. What the
// opt-level 3 core gains is mostly the event writer's appends being inlined; the writer now
// appends through an always-inlined `put` (-7% per call at +2.6 KB, same-process A/B of
// 2026-11-22, wasm.md), and small `memory.copy`s are routed through plain loads and stores
// (smallCopies below, -3%). For more
// such experiments: BATON_WASM_OPT_LEVEL (the whole build), BATON_WASM_OPT (the wasm-opt
// level) and BATON_WASM_CARGO_CONFIG (`;`-separated `--config` values for cargo, e.g.
// `profile.release.package.baton.opt-level="s"`).
const cargoConfig = (process.env.BATON_WASM_CARGO_CONFIG || '').split(';').filter((c) => c.trim() !== '').flatMap((c) => ['--config', c.trim()]);
// The guard for that: LTO only happens while the crate builds a cdylib and nothing else.
const manifest = readFileSync(join(root, 'crates', 'wasm', 'Cargo.toml'), 'utf8');
if (!/^crate-type = \["cdylib"\]$/m.test(manifest)) {
  throw new Error('build: crates/wasm must have crate-type = ["cdylib"] only; cargo runs no LTO for a crate that also builds an rlib or a staticlib');
}
if (!process.argv.includes('--skip-cargo')) {
  run('nice', ['-n', '10', '/usr/bin/cargo', 'build', '--release', '-p', 'baton-wasm', '-Zbuild-std=std,panic_abort',
    // std's own size-over-speed switches (smaller formatting and sorting code).
    '-Zbuild-std-features=optimize_for_size',
    '--target', 'wasm32-unknown-unknown', '-j2', ...cargoConfig], {
    cwd: root,
    // Size profile through the environment (the workspace profile stays as it is): opt-level z,
    // fat LTO, one codegen unit, no debug info, no panic locations. This build and
    // `just wasm-check` share target-wasm/ without rebuilding each other's artifacts.
    env: {
      ...process.env,
      RUSTC: '/usr/bin/rustc',
      RUSTC_BOOTSTRAP: '1',
      CARGO_TARGET_DIR: targetDir,
      CARGO_PROFILE_RELEASE_OPT_LEVEL: process.env.BATON_WASM_OPT_LEVEL || 'z',
      CARGO_PROFILE_RELEASE_LTO: 'fat',
      CARGO_PROFILE_RELEASE_CODEGEN_UNITS: '1',
      CARGO_PROFILE_RELEASE_DEBUG: 'false',
      // Panic messages keep their text but not their file:line (about 20 KB less); `{:?}`
      // formatting compiles to nothing (no message of the core or this crate uses it).
      // `baton_optimize`: `#[optimize(speed)]` on the module's per-call path (crates/wasm/src/lib.rs).
      RUSTFLAGS: '-Zlocation-detail=none -Zfmt-debug=none --cfg baton_optimize',
    },
  });
}

rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, 'tmp'), { recursive: true });
const bindgen = process.env.WASM_BINDGEN || 'wasm-bindgen';
for (const target of ['nodejs', 'web']) {
  const out = join(dist, target === 'nodejs' ? 'node' : 'web');
  run(bindgen, ['--target', target, '--no-typescript', '--out-dir', out, rawWasm]);
}
// Optimize once (wasm-bindgen's output for both targets is the same module) and copy it over.
const bin = join(pkg, 'node_modules', '.bin'); // npm binaryen's tools
const wasmOpt = join(bin, 'wasm-opt');
const bg = join(dist, 'node', 'baton_wasm_bg.wasm');
const opt = join(dist, 'tmp', 'opt.wasm');
const FEATURES = ['--enable-bulk-memory', '--enable-nontrapping-float-to-int', '--enable-sign-ext', '--enable-mutable-globals',
  '--enable-reference-types', '--enable-multivalue'];
run(wasmOpt, [process.env.BATON_WASM_OPT || '-Oz', ...FEATURES, '--low-memory-unused', '--strip-debug', '--strip-producers', bg, '-o', opt]);
if (!process.env.BATON_WASM_KEEP_MEMORY_COPY) smallCopies(opt);
copyFileSync(opt, bg);
copyFileSync(opt, join(dist, 'web', 'baton_wasm_bg.wasm'));
rmSync(join(dist, 'tmp'), { recursive: true, force: true });

// The facade: one template body, three wrappers. The body starts with what it shares with
// node/: the CommonJS modules of node/lib/, each evaluated once, in an order where every
// module comes after those it requires, and their exports merged into `common`.
const SHARED = ['kinds.js', 'errors.js', 'json.js', 'hostvalues.js', 'events.js', 'forks.js', 'streams.js'];
const libDir = join(root, 'node', 'lib');
const unlisted = readdirSync(libDir).filter((f) => !SHARED.includes(f));
if (unlisted.length > 0) throw new Error(`build: node/lib/ has modules the build does not embed: ${unlisted.join(', ')}`);
const shared = SHARED.map((f) => `modules['./${f}'] = (() => {\nconst module = { exports: {} };\n${readFileSync(join(libDir, f), 'utf8')}\nreturn module.exports;\n})();`).join('\n');
const apiBody = readFileSync(join(pkg, 'lib', 'api.js'), 'utf8');
const body = `const common = (() => {\nconst modules = {};\nconst require = (path) => modules[path];\n${shared}\nreturn Object.assign({}, ...Object.values(modules));\n})();\n${apiBody}`;
const names = [...body.match(/return \{\n([\s\S]*?)\n {2}\};\n\}\s*$/)[1].matchAll(/^ {4}(\w+),$/gm)].map((m) => m[1]);
// Exports that are objects of functions, not functions.
const NAMESPACES = ['plugins', 'codecs'];
const banner = '// Generated by wasm/scripts/build.mjs from node/lib/*.js and wasm/lib/api.js; do not edit.\n';

writeFileSync(join(dist, 'index.cjs'), `${banner}'use strict';\n${body}\nconst api = createApi(require('./node/baton_wasm.js'), { nextTick: process.nextTick });\napi.init = async () => {};\nmodule.exports = api;\n`);
// wasm-bindgen writes .js files: CommonJS for nodejs, ES modules for web.
writeFileSync(join(dist, 'node', 'package.json'), '{"type": "commonjs"}\n');
writeFileSync(join(dist, 'web', 'package.json'), '{"type": "module"}\n');
writeFileSync(join(dist, 'index.mjs'), `${banner}import { createRequire } from 'node:module';\nconst api = createRequire(import.meta.url)('./index.cjs');\nexport const init = api.init;\n${names.map((n) => `export const ${n} = api.${n};`).join('\n')}\nexport default api;\n`);
writeFileSync(join(dist, 'web.mjs'), `${banner}import initWasm, * as native from './web/baton_wasm.js';\n${body}
let api = null;
// Classes and constants are live bindings, set by init().
${names.filter((n) => /^[A-Z]/.test(n)).map((n) => `export let ${n};`).join('\n')}
/** Loads and instantiates the module; call (and await) it once before anything else. */
export async function init(input) {
  if (api !== null) return;
  await initWasm(input === undefined ? undefined : { module_or_path: input });
  api = createApi(native);
  ${names.filter((n) => /^[A-Z]/.test(n)).map((n) => `${n} = api.${n};`).join(' ')}
}
function need() {
  if (api === null) throw new Error('baton-wasm: call and await init() first');
  return api;
}
// The namespace objects (plugins, codecs) forward to the instance created by init().
${names.filter((n) => !/^[A-Z]/.test(n)).map((n) => (NAMESPACES.includes(n)
    ? `export const ${n} = new Proxy({}, { get: (_, k) => need().${n}[k], has: (_, k) => k in need().${n} });`
    : `export function ${n}(...a) { return need().${n}(...a); }`)).join('\n')}
`);

/**
 * Routes every `memory.copy` of the optimized module through the function in
 * small-copy.wat (why: see there; measured in wasm.md) and optimizes again. Text round trip
 * through binaryen's own printer and parser; a module without a single `memory.copy` would
 * mean the toolchain changed, so that fails the build.
 * @param {string} wasm the module, rewritten in place
 */
function smallCopies(wasm) {
  const text = join(dist, 'tmp', 'opt.wat');
  run(join(bin, 'wasm-dis'), [...FEATURES, wasm, '-o', text]);
  const src = readFileSync(text, 'utf8');
  const sites = src.split('(memory.copy').length - 1;
  if (sites === 0) throw new Error('build: the optimized module has no memory.copy to route');
  const end = src.lastIndexOf(')');
  const helper = readFileSync(join(pkg, 'scripts', 'small-copy.wat'), 'utf8');
  writeFileSync(text, `${src.slice(0, end).replaceAll('(memory.copy', '(call $__baton_small_copy')}${helper})\n`);
  const assembled = join(dist, 'tmp', 'small-copy.wasm');
  run(join(bin, 'wasm-as'), [...FEATURES, text, '-o', assembled]);
  run(wasmOpt, [process.env.BATON_WASM_OPT || '-Oz', ...FEATURES, '--low-memory-unused', assembled, '-o', wasm]);
  console.log(`small copies: ${sites} memory.copy sites routed through $__baton_small_copy`);
}

const size = statSync(bg).size;
const gz = gzipSync(readFileSync(bg), { level: 9 }).length;
const raw = statSync(rawWasm).size;
writeFileSync(join(dist, 'size.json'), JSON.stringify({ raw, optimized: size, gzipped: gz, limit: LIMIT }, null, 2) + '\n');
console.log(`size: raw ${raw} B, optimized ${size} B (${(size / 1024).toFixed(1)} KB), gzipped ${gz} B (${(gz / 1024).toFixed(1)} KB); limit ${LIMIT / 1024} KB`);
if (size > LIMIT) {
  console.error(`size: the optimized .wasm is over the ${LIMIT / 1024} KB limit`);
  process.exit(1);
}
