'use strict';
// Shared by the Node facade (node/index.js) and the wasm facade (wasm/lib/api.js), like every
// module of node/lib/: nothing here touches a native module, so one source serves both (node/
// requires it; wasm/scripts/build.mjs embeds node/lib/ into each file it generates). Rules stay
// in the Rust core.
// Errors as JS sees them: `BatonError` (`code` = the kind), and `invalid_argument` as a TypeError.

/** A Baton error: `code` is one of ERROR_KINDS. `invalid_argument` errors are also TypeErrors. */
class BatonError extends Error {
  constructor(code, message, detail) {
    super(message);
    this.name = 'BatonError';
    this.code = code;
    if (detail !== undefined) this.detail = detail;
    Object.defineProperty(this, '__baton', { value: true });
  }
  get kind() {
    return this.code;
  }
  static [Symbol.hasInstance](v) {
    return v !== null && typeof v === 'object' && v.__baton === true;
  }
}

function makeError(code, message, detail) {
  if (code === 'invalid_argument') {
    const e = new TypeError(message);
    e.code = code;
    Object.defineProperty(e, '__baton', { value: true });
    Object.defineProperty(e, 'kind', { get() { return this.code; } });
    return e;
  }
  return new BatonError(code, message, detail);
}

function isThenable(r) {
  return r !== null && (typeof r === 'object' || typeof r === 'function') && typeof r.then === 'function';
}

/**
 * `r` from a synchronous path, where a Promise cannot be waited for: one is refused with
 * `invalid_state` and `message` (its rejection handled, so it is not reported as unhandled).
 */
function notPromise(r, message) {
  if (isThenable(r)) {
    r.then(undefined, () => {});
    throw makeError('invalid_state', message);
  }
  return r;
}

module.exports = { BatonError, makeError, isThenable, notPromise };
