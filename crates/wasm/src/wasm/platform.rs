//! The host the core runs on: the JS clock and entropy behind the core's platform hooks,
//! the panic hook, and the module's start.

use super::*;

thread_local! {
    /// The message of the last Rust panic (the trap itself reaches JS as `RuntimeError`).
    pub(super) static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Entropy from crypto.getRandomValues, drawn in blocks: (pool, bytes used).
    pub(super) static ENTROPY: RefCell<(Vec<u8>, usize)> = const { RefCell::new((Vec::new(), 0)) };
    pub(super) static CLOCK_READS: Cell<u32> = const { Cell::new(0) };
    pub(super) static CLOCK_PERF: Cell<f64> = const { Cell::new(0.0) };
    pub(super) static CLOCK_LAST: Cell<i64> = const { Cell::new(0) };
    /// `Date.now()` minus `performance.now()`, in µs: with `performance.now()`, a µs wall clock.
    pub(super) static CLOCK_BASE: Cell<f64> = const { Cell::new(f64::NAN) };
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
    #[wasm_bindgen(js_namespace = Date, js_name = now)]
    fn date_now() -> f64;
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues)]
    fn get_random_values(buf: &mut [u8]);
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(msg: &str);
}

#[cfg_attr(baton_optimize, optimize(speed))]
pub(super) fn now_micros() -> i64 {
    // performance.now() gives µs resolution; Date.now() is the wall clock. Every call reads
    // performance.now(); Date.now() is read to re-anchor only every 64th call or when the
    // monotonic clock jumped (sleep, a suspended tab), since each read is a JS call.
    let perf = performance_now() * 1000.0;
    let now = CLOCK_BASE.with(|b| {
        let n = CLOCK_READS.with(|r| {
            let n = r.get().wrapping_add(1);
            r.set(n);
            n
        });
        let base = b.get();
        let last_perf = CLOCK_PERF.with(|p| p.replace(perf));
        if base.is_nan() || n % 64 == 0 || perf - last_perf > 1_000_000.0 {
            let wall = date_now() * 1000.0;
            if base.is_nan() || (base + perf - wall).abs() > 1000.0 {
                b.set(wall - perf);
                return wall;
            }
        }
        b.get() + perf
    }) as i64;
    // Never go backwards (a frozen or coarse clock still keeps ordering).
    CLOCK_LAST.with(|l| {
        let v = now.max(l.get());
        l.set(v);
        v
    })
}

#[cfg_attr(baton_optimize, optimize(speed))]
pub(super) fn fill_random(buf: &mut [u8]) {
    // Ids need a few bytes each; crypto.getRandomValues is a JS call, so draw 4 KiB at a time
    // and serve from that pool (bytes are used once).
    const POOL: usize = 4096;
    ENTROPY.with(|e| {
        let mut e = e.borrow_mut();
        let (pool, used) = &mut *e;
        let mut filled = 0;
        while filled < buf.len() {
            if *used >= pool.len() {
                pool.resize(POOL, 0);
                get_random_values(pool);
                *used = 0;
            }
            let n = (buf.len() - filled).min(pool.len() - *used);
            buf[filled..filled + n].copy_from_slice(&pool[*used..*used + n]);
            pool[*used..*used + n].fill(0);
            *used += n;
            filled += n;
        }
    });
}

/// Runs once when the module is instantiated: JS clock and entropy, and a panic hook that keeps
/// the message for the facade (a panic aborts: JS sees `RuntimeError: unreachable`).
#[wasm_bindgen(start)]
pub fn start() {
    baton::platform::install(baton::platform::PlatformHooks { now_micros, fill_random });
    std::panic::set_hook(Box::new(|info| {
        let text = info.to_string();
        console_error(&format!("baton (wasm): {text}"));
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(text));
    }));
}

/// The message of the last Rust panic, if any (the facade reads it after a trap).
#[wasm_bindgen(js_name = lastPanic)]
pub fn last_panic() -> Option<String> {
    LAST_PANIC.with(|p| p.borrow().clone())
}

/// Panics on purpose: lets the tests check that a panic surfaces as an `internal` error.
#[wasm_bindgen(js_name = debugPanic)]
pub fn debug_panic(message: &str) {
    panic!("{message}");
}
