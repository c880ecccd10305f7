'use strict';
// Shared by the Node facade (node/index.js) and the wasm facade (wasm/lib/api.js), like every
// module of node/lib/: nothing here touches a native module, so one source serves both (node/
// requires it; wasm/scripts/build.mjs embeds node/lib/ into each file it generates). Rules stay
// in the Rust core.

// ----- lazy forks (docs/node.md, "Lazy forks") -----

/**
 * The current-stack machinery of a facade, over its native `fork` and its context `store`
 * (AsyncLocalStorage, or a plain variable where there is none). An async call's function runs
 * on a fork of the caller's stack; when nothing observed the call, that fork is a `LazyFork`:
 * made on first use from a pin — a fork of the caller's stack taken at call time and shared by
 * every call made from that same position (nothing is ever pushed on a pin) — so it parents
 * exactly where a fork made at call time would, whatever the caller did since. Most functions
 * never use Baton: they cost a plain object, not a native handle with a finalizer.
 *
 * An entered async call (Node: only subscribers see it) runs on a real fork with its scope
 * pushed, which the addon holds by a token (`call`) while the call runs. Its store is a
 * `LazyFork` too: the fork's handle is asked for (`enteredStack`) only when the function uses
 * Baton, and after the call ended (`call` 0) the store is made from the pin, as for any other
 * lazy fork — the same parent as the emptied fork would have given.
 * @param {(stack: any) => any} fork the native fork of a stack
 * @param {() => any} store the context's current store (`undefined`: the default stack)
 * @param {any} defaultStack
 * @param {(call: number) => any} [enteredStack] the handle of a running entered call's fork,
 *   or null once it ended (Node only)
 */
function lazyForks(fork, store, defaultStack, enteredStack) {
  class LazyFork {
    constructor(pin, call) {
      this.pin = pin;
      this.stack = null;
      /** Non-zero: the token of the running entered call whose fork this store stands for. */
      this.call = call;
    }
  }

  /** The stack of a `LazyFork` not made yet: the running call's fork, else a fork of the pin. */
  function materialize(s) {
    if (s.call !== 0) {
      const stack = enteredStack(s.call);
      if (stack !== null) return (s.stack = stack);
    }
    return (s.stack = fork(s.pin));
  }

  /** The stack to push on or hand out: a `LazyFork` gets its own stack here, once. */
  function current() {
    const s = store();
    if (s === undefined) return defaultStack;
    if (s instanceof LazyFork) return s.stack === null ? materialize(s) : s.stack;
    return s;
  }

  /**
   * Where new work is parented in store `s`, for native calls that only read their stack
   * (marks, forks, propagation, the unobserved check, async calls, which fork it): an
   * unmaterialized `LazyFork` answers with its pin — unless a running call's scope is current
   * on its fork. Nothing that may push must get this.
   */
  function baseOf(s) {
    if (s === undefined) return defaultStack;
    if (s instanceof LazyFork) return s.stack !== null ? s.stack : s.call !== 0 ? materialize(s) : s.pin;
    return s;
  }

  function currentBase() {
    return baseOf(store());
  }

  /**
   * Pins: per stack (weakly, as long as it lives), the fork taken at its last position
   * (`Stack::current_id`; -1: not exactly representable, never reused). The pin holds its
   * scope alive, so while it is cached the position cannot name another scope.
   */
  const pins = new WeakMap();

  function pinOf(stack, id) {
    const p = pins.get(stack);
    if (p !== undefined && p.id === id && id !== -1) return p.pin;
    const pin = fork(stack);
    if (p !== undefined) {
      p.id = id;
      p.pin = pin;
    } else {
      pins.set(stack, { id, pin });
    }
    return pin;
  }

  /**
   * The store for the function of an async call made in store `s`, base `base`, at `id`; `call`
   * is the token of the entered call it runs (0: none, the call is just its function).
   */
  function lazyFork(s, base, id, call = 0) {
    // Nothing was pushed in an unmaterialized LazyFork: its pin is already the right base.
    return new LazyFork(s instanceof LazyFork && s.stack === null && s.call === 0 ? s.pin : pinOf(base, id), call);
  }

  return { current, currentBase, baseOf, lazyFork };
}

module.exports = { lazyForks };
