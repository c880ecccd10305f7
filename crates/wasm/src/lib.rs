//! Baton for WebAssembly: the wasm-bindgen layer under the `wasm/` npm package.
//!
//! Everything lives in [`wasm`](self) and only exists on `wasm32`; on the host this crate is
//! an empty library so the workspace builds, lints and tests stay trivial (the `host-lint`
//! feature compiles it on the host for clippy alone). The JS facade in
//! `wasm/lib/` is the public surface (the same TypeScript API as `node/`); these exports are
//! its private native layer and pass JSON as text.

// `#[optimize(speed)]` on the per-call path (the entered calls, the batch writer, the clock,
// the allocator): with the module at opt-level z, these functions may then inline what they
// call from the core (whole-module LTO). scripts/build.mjs sets `--cfg baton_optimize` (its
// toolchain allows the unstable attribute: RUSTC_BOOTSTRAP, as for -Zbuild-std); any other
// build leaves the attributes out. Same-process A/B: 3-5% per call for 2.4 KB (wasm.md).
#![cfg_attr(baton_optimize, feature(optimize_attribute))]

#[cfg(any(target_arch = "wasm32", test))]
mod heap;
#[cfg(any(target_arch = "wasm32", feature = "host-lint"))]
mod wasm;

/// Small blocks from size-class free lists instead of dlmalloc (see [`heap`]); only where the
/// module has no threads.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static HEAP: heap::Heap = heap::Heap::new();
