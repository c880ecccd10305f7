'use strict';
// Shared by the Node facade (node/index.js) and the wasm facade (wasm/lib/api.js), like every
// module of node/lib/: nothing here touches a native module, so one source serves both (node/
// requires it; wasm/scripts/build.mjs embeds node/lib/ into each file it generates). Rules stay
// in the Rust core.

const { makeError } = require('./errors.js');

// ----- JSON at the boundary -----
// Values cross to the native side as JSON text: one string instead of a tree of calls. A value
// is validated first: `exactness` is the quick walk; when it has a doubt, `check` walks again to
// name the path of what JSON cannot carry.

const parse = JSON.parse;

function renderPath(root, keys) {
  let p = root;
  for (const k of keys) {
    p += typeof k === 'number' ? `[${k}]` : /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`;
  }
  return p;
}

function notJson(root, keys, what) {
  return makeError('invalid_argument', `${renderPath(root, keys)}: ${what} is not JSON`);
}

/** Nesting past which a value is refused (JSON.stringify would exhaust the JS stack first). */
const MAX_DEPTH = 512;

/**
 * Throws (naming the path) unless `v` is JSON; returns whether it is exactly its JSON form —
 * false when `JSON.stringify` would change it: an `undefined` field or array hole, a `toJSON`
 * method (a Date).
 */
function check(v, root, keys, seen) {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return true;
    case 'undefined':
      return false;
    case 'number':
      if (!Number.isFinite(v)) throw notJson(root, keys, `the number ${v}`);
      return true;
    case 'function':
      throw notJson(root, keys, 'a function');
    case 'symbol':
      throw notJson(root, keys, 'a symbol');
    case 'bigint':
      throw notJson(root, keys, 'a BigInt');
    default:
      break;
  }
  if (v === null) return true;
  if (typeof v.toJSON === 'function') return false;
  if (seen.includes(v)) throw makeError('invalid_argument', `${renderPath(root, keys)}: a cycle (the value contains itself) is not JSON`);
  if (seen.length > MAX_DEPTH) throw makeError('invalid_argument', `${renderPath(root, keys)}: nested too deeply (more than ${MAX_DEPTH} levels)`);
  seen.push(v);
  let exact = true;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      keys.push(i);
      if (!check(v[i], root, keys, seen)) exact = false;
      keys.pop();
    }
  } else {
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) {
      const name = v.constructor && typeof v.constructor.name === 'string' && v.constructor.name ? `a ${v.constructor.name} instance` : 'an object with a custom prototype';
      throw notJson(root, keys, name);
    }
    for (const k in v) {
      keys.push(k);
      if (!check(v[k], root, keys, seen)) exact = false;
      keys.pop();
    }
  }
  seen.pop();
  return exact;
}

/**
 * The quick walk: 1 when `v` is exactly its JSON form, 0 when it is JSON but `JSON.stringify`
 * changes it, -1 when it may not be JSON (no paths, no cycle list: past 100 levels it is in
 * doubt) — `check` then finds and names the problem.
 */
function exactness(v, depth) {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return 1;
    case 'undefined':
      return 0;
    case 'number':
      return Number.isFinite(v) ? 1 : -1;
    case 'object':
      break;
    default:
      return -1;
  }
  if (v === null) return 1;
  if (typeof v.toJSON === 'function') return 0;
  if (depth > 100) return -1;
  let r = 1;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x = exactness(v[i], depth + 1);
      if (x < 0) return -1;
      if (x === 0) r = 0;
    }
    return r;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return -1;
  for (const k in v) {
    const x = exactness(v[k], depth + 1);
    if (x < 0) return -1;
    if (x === 0) r = 0;
  }
  return r;
}

/** Whether the value last given to `enc` was exactly its JSON form (read right after `enc`). */
const encoded = { exact: false };

/** JSON text of a value (validated; `undefined` fields dropped). Sets `encoded.exact`. */
function enc(v, root) {
  if (v === undefined) {
    encoded.exact = false;
    return 'null';
  }
  let x = exactness(v, 0);
  if (x < 0) x = check(v, root, [], []) ? 1 : 0;
  const text = JSON.stringify(v);
  encoded.exact = x === 1;
  return text;
}

/**
 * A payload handed on inside a call no middleware sees: the value itself when it is exactly
 * its JSON form, else its JSON copy — what the managed path would hand on.
 */
function own(v, root) {
  if (v === undefined) return null;
  let x = exactness(v, 0);
  if (x < 0) x = check(v, root, [], []) ? 1 : 0;
  return x === 1 ? v : parse(JSON.stringify(v));
}

module.exports = { parse, enc, encoded, own };
