'use strict';
// What the Node facade (node/index.js) and the wasm facade (wasm/lib/api.js) share: errors,
// the JSON boundary, event objects from the core's layout, and the pieces of streams the
// facades pull themselves. None of it touches a native module, so one source serves both:
// node/ requires this file; wasm/scripts/build.mjs embeds it into each file it generates.
// Rules stay in the Rust core: this is how values and events cross into JS, nothing more.

const ERROR_KINDS = Object.freeze([
  'invalid_argument', 'invalid_state', 'not_found', 'already_exists', 'guardrail_rejected',
  'callback_failed', 'upstream', 'timeout', 'already_shutdown', 'internal',
]);

const MIDDLEWARE_KINDS = Object.freeze([
  'tool_conditional_execution', 'tool_request_intercept', 'tool_execution_intercept',
  'tool_sanitize_request', 'tool_sanitize_response', 'llm_conditional_execution',
  'llm_request_intercept', 'llm_execution_intercept', 'llm_stream_execution_intercept',
  'llm_sanitize_request', 'llm_sanitize_response', 'mark_sanitize', 'scope_sanitize_start',
  'scope_sanitize_end', 'event_metadata_injector', 'subscriber',
]);

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

// ----- event objects from the core's layout -----
// Per event the native side records (`Event::write_json_layout`) its kind, then per top-level
// value after `kind` its form and where it starts and ends in the batch text (UTF-16 units).

const LAYOUT = 34;
const KIND_SCOPE_START = 1;
const KIND_MARK = 3;
const FORM_ABSENT = 0;
const FORM_NULL = 1;
const FORM_STRING = 2;
const FORM_JSON = 3;
const FORM_EMPTY_ARRAY = 4;
const FORM_EMPTY_OBJECT = 5;
const FORM_STATUS_OK = 6;
// Where each value's numbers start in an event's layout (after the kind).
const F_VERSION = 1;
const F_UUID = 4;
const F_PARENT = 7;
const F_TIMESTAMP = 10;
const F_NAME = 13;
const F_CATEGORY = 16;
const F_ATTRIBUTES = 19;
const F_PROFILE = 22;
const F_DATA = 25;
const F_SCHEMA = 28;
const F_METADATA = 31;

/**
 * Parses the structured values (form FORM_JSON) of a batch's `n` events, whose layouts start at
 * `l[at]`, in one `JSON.parse` of `[v0,v1,...]` and writes each value's index in the result over
 * its start offset in the layout, where `value` looks it up. One parse per batch instead of one
 * per value: each call's fixed cost (entry, flattening a slice, setting up the parser) was more
 * than half of what building an event object cost. Marks that `eventObject` parses whole are
 * left out. The layout is the facade's own copy, read once more by `eventObject` and dropped.
 */
function batchValues(text, l, at, n) {
  const parts = [];
  for (let o = at, last = at + n * LAYOUT; o < last; o += LAYOUT) {
    if (wholeMark(l, o)) continue;
    for (let f = o + 1; f < o + LAYOUT; f += 3) {
      if (l[f] === FORM_JSON) {
        parts.push(text.slice(l[f + 1], l[f + 2]));
        l[f + 1] = parts.length - 1;
      }
    }
  }
  return parts.length === 0 ? parts : parse(`[${parts.join(',')}]`);
}

/** Whether the event at `l[o]` is a mark with a category profile (rare): parsed whole. */
function wholeMark(l, o) {
  return l[o] === KIND_MARK && l[o + F_PROFILE] !== FORM_ABSENT;
}

/**
 * One top-level value of an event: sliced when it is a plain string, taken from `values` (see
 * `batchValues`) when structured.
 */
function value(text, l, at, values) {
  switch (l[at]) {
    case FORM_STRING:
      return text.slice(l[at + 1] + 1, l[at + 2] - 1);
    case FORM_NULL:
      return null;
    case FORM_JSON:
      return values[l[at + 1]];
    case FORM_EMPTY_ARRAY:
      return [];
    case FORM_EMPTY_OBJECT:
      return {};
    case FORM_ABSENT:
      return undefined;
    case FORM_STATUS_OK:
      return { 'otel.status_code': 'OK' };
    default: // FORM_CHUNK_INDEX: after the 19 characters of `{"llm.chunk.index":`
      return { 'llm.chunk.index': Number(text.slice(l[at + 1] + 19, l[at + 2] - 1)) };
  }
}

/**
 * The object of the event whose layout starts at `l[o]` and whose text is `text[start, end)` —
 * the same as `JSON.parse` of that text, keys in the same order — built from the values the
 * layout locates (`JSON.parse` of whole events cost more than the rest of a delivery), its
 * structured ones from `values`, what `batchValues` gave for the batch. A mark with a category
 * profile (rare) is parsed whole.
 */
function eventObject(text, l, o, start, end, values) {
  const kind = l[o];
  if (kind === KIND_MARK) {
    if (wholeMark(l, o)) return parse(text.slice(start, end));
    // A mark's category, when it has one (every stream chunk mark does), comes after its name.
    if (l[o + F_CATEGORY] !== FORM_ABSENT) {
      return {
        kind: 'mark', atof_version: value(text, l, o + F_VERSION, values), uuid: value(text, l, o + F_UUID, values),
        parent_uuid: value(text, l, o + F_PARENT, values), timestamp: value(text, l, o + F_TIMESTAMP, values),
        name: value(text, l, o + F_NAME, values), category: value(text, l, o + F_CATEGORY, values),
        data: value(text, l, o + F_DATA, values), data_schema: value(text, l, o + F_SCHEMA, values),
        metadata: value(text, l, o + F_METADATA, values),
      };
    }
    return {
      kind: 'mark', atof_version: value(text, l, o + F_VERSION, values), uuid: value(text, l, o + F_UUID, values),
      parent_uuid: value(text, l, o + F_PARENT, values), timestamp: value(text, l, o + F_TIMESTAMP, values),
      name: value(text, l, o + F_NAME, values), data: value(text, l, o + F_DATA, values),
      data_schema: value(text, l, o + F_SCHEMA, values), metadata: value(text, l, o + F_METADATA, values),
    };
  }
  return {
    kind: 'scope', scope_category: kind === KIND_SCOPE_START ? 'start' : 'end',
    atof_version: value(text, l, o + F_VERSION, values), uuid: value(text, l, o + F_UUID, values),
    parent_uuid: value(text, l, o + F_PARENT, values), timestamp: value(text, l, o + F_TIMESTAMP, values),
    name: value(text, l, o + F_NAME, values), category: value(text, l, o + F_CATEGORY, values),
    attributes: value(text, l, o + F_ATTRIBUTES, values), category_profile: value(text, l, o + F_PROFILE, values),
    data: value(text, l, o + F_DATA, values), data_schema: value(text, l, o + F_SCHEMA, values),
    metadata: value(text, l, o + F_METADATA, values),
  };
}

// ----- delivering a batch -----

/** A delivery's event index meaning "this subscriber was removed": the facade forgets it. */
const CLOSED = 0xffffffff;

/**
 * Calls the subscribers of one batch in order. `pairs[from..to)` holds (subscriber id, event
 * index or CLOSED) pairs; `subscribers` maps ids to `{ fn, json }`. Event `i` ends at
 * `ends[endsAt + i]` in `text` and its layout starts at `l[layoutAt + i * LAYOUT]` (the Node
 * addon hands these over as separate arrays, the wasm module as one). Each event is sliced out
 * of the text or built from its layout only for a subscriber that wants it in that form, once,
 * and shared by all of them; the batch's structured values are parsed together on the first
 * object (`batchValues`), or, when the binding already gathered them (`valuesText`: the Node
 * addon copies them into one JSON array off the JS thread), by one parse of that text. A
 * subscriber that throws or whose Promise rejects is isolated and reported through `failed`.
 */
function deliverBatch(subscribers, failed, text, l, layoutAt, ends, endsAt, n, pairs, from, to, valuesText) {
  const texts = new Array(n);
  const objects = new Array(n);
  let values = null;
  for (let i = from; i < to; i += 2) {
    const id = pairs[i];
    const idx = pairs[i + 1];
    if (idx === CLOSED) {
      subscribers.delete(id);
      continue;
    }
    const sub = subscribers.get(id);
    if (sub === undefined) continue;
    try {
      let ev;
      if (sub.json) {
        ev = texts[idx];
        if (ev === undefined) ev = texts[idx] = text.slice(idx === 0 ? 0 : ends[endsAt + idx - 1], ends[endsAt + idx]);
      } else {
        ev = objects[idx];
        if (ev === undefined) {
          if (values === null) values = valuesText === undefined ? batchValues(text, l, layoutAt, n) : parse(valuesText);
          ev = objects[idx] = eventObject(text, l, layoutAt + idx * LAYOUT, idx === 0 ? 0 : ends[endsAt + idx - 1], ends[endsAt + idx], values);
        }
      }
      const r = sub.fn(ev);
      if (r !== null && typeof r === 'object' && typeof r.then === 'function') r.then(undefined, failed);
    } catch {
      failed();
    }
  }
}

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

module.exports = {
  ERROR_KINDS, MIDDLEWARE_KINDS, BatonError, makeError, isThenable, notPromise,
  parse, check, enc, encoded, own, LAYOUT, deliverBatch, lazyForks, DONE, rawIterator, step, closeSource,
};
