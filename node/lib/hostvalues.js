'use strict';
// Shared by the Node facade (node/index.js) and the wasm facade (wasm/lib/api.js), like every
// module of node/lib/: nothing here touches a native module, so one source serves both (node/
// requires it; wasm/scripts/build.mjs embeds node/lib/ into each file it generates). Rules stay
// in the Rust core. Only the Node facade offers host values; in the wasm package the table
// stays empty and `value` never meets the form.

// ----- host values (docs/node.md, "Host values") -----
// When every consumer of an event is a JS subscriber that takes objects, nothing needs the
// JSON text of a call's arguments or result. The facade then hands the addon a token for a
// snapshot of the value instead (`offer`), the core keeps the token in the event, and the
// delivery gives the snapshot to the subscribers (`take`) instead of parsing text. The core
// decides per event, under its queue lock, whether every subscriber the event meets takes
// host values; when one does not, it asks the addon for the text, which stringifies the
// snapshot. So a snapshot is only ever a copy of what the text would have said.

/** Snapshots not yet delivered; the token of `values[i]` is `base + i - start`. */
let values = [];
let start = 0;
let base = 1;
/** Snapshots allowed in flight: past this, calls go back to text until deliveries free some. */
const MAX_IN_FLIGHT = 1 << 16;
/** What `offer` snapshotted last (the addon takes it with the token, for the text fallback). */
let last;

/** Returned by `snapshot` for a value that is not exactly its JSON form. */
const NOT_EXACT = Symbol('not exact');

/**
 * A deep copy of `v` when it is exactly its JSON form (what `JSON.parse(JSON.stringify(v))`
 * gives, `-0` made `0` as JSON does), else NOT_EXACT: the caller then uses text, whose walk
 * names any problem. Same rules as `exactness` in json.js.
 */
function snapshot(v, depth) {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return v;
    case 'number':
      return Number.isFinite(v) ? (v === 0 ? 0 : v) : NOT_EXACT;
    case 'object':
      break;
    default:
      return NOT_EXACT;
  }
  if (v === null) return null;
  if (typeof v.toJSON === 'function' || depth > 100) return NOT_EXACT;
  if (Array.isArray(v)) {
    const a = new Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const x = snapshot(v[i], depth + 1);
      if (x === NOT_EXACT) return NOT_EXACT;
      a[i] = x;
    }
    return a;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return NOT_EXACT;
  const o = {};
  for (const k in v) {
    const x = snapshot(v[k], depth + 1);
    if (x === NOT_EXACT || x === undefined) return NOT_EXACT;
    o[k] = x;
  }
  return o;
}

/**
 * The token of a snapshot of `v` for the call about to cross (its snapshot in `lastOffered()`),
 * or 0: use text. `welcome` is the addon's hint that events emitted now would keep host values.
 */
function offer(v, welcome) {
  if (!welcome || values.length - start >= MAX_IN_FLIGHT) return 0;
  const s = snapshot(v, 0);
  if (s === NOT_EXACT) return 0;
  last = s;
  values.push(s);
  return base + values.length - 1 - start;
}

function lastOffered() {
  return last;
}

/**
 * The snapshot whose token ends in the 32 bits `t32` (what the event's layout holds). Tokens
 * are issued in the order their events are queued and a batch's events are handed to
 * subscribers in that order, each event's object built once for all of them; so this token and
 * every older one are done with: an older token's event was delivered, or never will be (it
 * fell back to text, or nobody saw it).
 */
function take(t32) {
  const offset = (t32 - base) >>> 0;
  if (offset >= values.length - start) return undefined; // not reached: never offered
  const end = start + offset;
  const v = values[end];
  for (let i = start; i <= end; i++) values[i] = undefined;
  start = end + 1;
  base += offset + 1;
  compact();
  return v;
}

/**
 * Drops every snapshot offered before `before` (a `mark()` taken before a flush that has now
 * delivered everything queued ahead of it): those events were delivered or never will be.
 */
function dropBefore(before) {
  const n = Math.min(before - base, values.length - start);
  if (n <= 0) return;
  for (let i = start; i < start + n; i++) values[i] = undefined;
  start += n;
  base += n;
  compact();
}

/** Keeps the array from growing with its emptied front. */
function compact() {
  if (start === values.length) {
    values = [];
    start = 0;
  } else if (start > 1024 && start * 2 > values.length) {
    values = values.slice(start);
    start = 0;
  }
}

/** The token the next offer would get (for `dropBefore`). */
function mark() {
  return base + values.length - start;
}

/** Snapshots held (tests check the bound). */
function held() {
  return values.length - start;
}

module.exports = { offer, lastOffered, take, dropBefore, mark, held };
