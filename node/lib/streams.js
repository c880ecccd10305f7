'use strict';
// Shared by the Node facade (node/index.js) and the wasm facade (wasm/lib/api.js), like every
// module of node/lib/: nothing here touches a native module, so one source serves both (node/
// requires it; wasm/scripts/build.mjs embeds node/lib/ into each file it generates). Rules stay
// in the Rust core.

const { isThenable } = require('./errors.js');

// ----- stream sources -----

const DONE = Object.freeze({ value: undefined, done: true });

/** The iterator of what a stream callback returned (async preferred for async streams). */
function rawIterator(x, preferAsync) {
  if (x !== null && typeof x !== 'string' && (typeof x === 'object' || typeof x === 'function')) {
    const a = typeof x[Symbol.asyncIterator] === 'function';
    const s = typeof x[Symbol.iterator] === 'function';
    if (a && (preferAsync || !s)) return x[Symbol.asyncIterator]();
    if (s) return x[Symbol.iterator]();
    if (typeof x.next === 'function') return x;
  }
  throw new TypeError('a stream callback must return an iterable or async iterable of chunks');
}

function step(it) {
  return it.next();
}

/** Closes a source the consumer stopped reading (its own failure to close is ignored). */
function closeSource(it) {
  try {
    if (typeof it.return === 'function') {
      const r = it.return();
      if (isThenable(r)) r.then(undefined, () => {});
    }
  } catch {
    // The stream has already ended; nothing waits for the source.
  }
}

module.exports = { DONE, rawIterator, step, closeSource };
