//! The platform seam: clock, entropy and whether a dispatcher thread can be started.
//!
//! Native targets use the OS. `wasm32-unknown-unknown` has no OS clock, no entropy source and
//! no threads, and the core may not depend on wasm-bindgen, so the wasm binding installs its
//! JS clock and `crypto.getRandomValues` here with [`install`]. Until it does, wasm falls back
//! to a counter clock and a clock-seeded generator (documented as unfit for production ids).

use std::sync::OnceLock;

/// Host-provided replacements for the OS facilities.
#[derive(Clone, Copy)]
pub struct PlatformHooks {
    /// Microseconds since the Unix epoch.
    pub now_micros: fn() -> i64,
    /// Fills the buffer with cryptographically random bytes.
    pub fill_random: fn(&mut [u8]),
}

static HOOKS: OnceLock<PlatformHooks> = OnceLock::new();

/// Installs the host clock and entropy. Returns `false` if hooks were already installed.
pub fn install(hooks: PlatformHooks) -> bool {
    HOOKS.set(hooks).is_ok()
}

/// Current wall-clock time in microseconds since the Unix epoch.
pub fn now_micros() -> i64 {
    if let Some(h) = HOOKS.get() {
        return (h.now_micros)();
    }
    os_now_micros()
}

/// Fills `buf` with random bytes from the installed hook or the OS.
pub fn fill_random(buf: &mut [u8]) {
    if let Some(h) = HOOKS.get() {
        (h.fill_random)(buf);
        return;
    }
    os_fill_random(buf);
}

/// True when the core may start its own dispatcher thread.
pub const HAS_THREADS: bool = cfg!(not(target_arch = "wasm32"));

#[cfg(not(target_arch = "wasm32"))]
fn os_now_micros() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i64,
        Err(e) => -(e.duration().as_micros() as i64),
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn os_fill_random(buf: &mut [u8]) {
    if getrandom::fill(buf).is_err() {
        // The OS refused entropy (practically never on Linux); fall back to clock mixing so
        // ids stay unique within the process.
        fallback_fill(buf);
    }
}

#[cfg(target_arch = "wasm32")]
fn os_now_micros() -> i64 {
    // No clock without hooks: a strictly increasing counter keeps ordering and the
    // end-after-start rule intact.
    use std::sync::atomic::{AtomicI64, Ordering};
    static COUNTER: AtomicI64 = AtomicI64::new(1_700_000_000_000_000);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

#[cfg(target_arch = "wasm32")]
fn os_fill_random(buf: &mut [u8]) {
    fallback_fill(buf);
}

fn fallback_fill(buf: &mut [u8]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    for chunk in buf.chunks_mut(8) {
        let mixed = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) ^ os_now_micros() as u64;
        let v = splitmix64(mixed);
        chunk.copy_from_slice(&v.to_le_bytes()[..chunk.len()]);
    }
}

pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
