'use strict';
// Baton for Node.js: the idiomatic facade over the native addon (baton.node).
// Every rule lives in the Rust core; this file maps "the current stack" onto
// AsyncLocalStorage, wraps handles in classes, and turns option objects into native calls.

const { AsyncLocalStorage } = require('node:async_hooks');
const path = require('node:path');

function loadNative() {
  const candidates = [];
  if (process.env.BATON_NODE_ADDON) candidates.push(process.env.BATON_NODE_ADDON);
  candidates.push(path.join(__dirname, 'baton.node'));
  let lastError;
  for (const file of candidates) {
    try {
      return require(file);
    } catch (e) {
      lastError = e;
    }
  }
  throw new Error(
    `baton: cannot load the native addon (${candidates.join(', ')}); build it with \`just build-node\`: ${lastError && lastError.message}`,
  );
}

const native = loadNative();

const { ERROR_KINDS, MIDDLEWARE_KINDS } = require('./lib/kinds.js');
const { BatonError, makeError, isThenable, notPromise } = require('./lib/errors.js');
const { parse, enc, encoded, own } = require('./lib/json.js');
const { deliverBatch } = require('./lib/events.js');
const { lazyForks } = require('./lib/forks.js');
const hostValues = require('./lib/hostvalues.js');
const { DONE, rawIterator, step, closeSource } = require('./lib/streams.js');

function encResult(v) {
  return enc(v, 'returned value');
}

function encOptional(v) {
  return v === undefined ? undefined : enc(v, 'returned value');
}

/** A callback that receives JSON text and returns JSON text (or a Promise of it). */
function wrapCallback(fn) {
  return (text) => {
    const r = fn(parse(text));
    return isThenable(r) ? r.then(encResult) : encResult(r);
  };
}

// ----- the current stack (AsyncLocalStorage) -----

const als = new AsyncLocalStorage();
const defaultStack = native.newStack();

// The current stack, lazy forks and their pins (shared with the wasm facade).
const { current, currentBase, baseOf, lazyFork } = lazyForks((s) => native.fork(s), () => als.getStore(), defaultStack, (call) => native.enteredStack(call));

/** The caller's position at the last entered async call, published by `enterTool`. */
const enteredPosition = new Float64Array(native.enteredPosition());

// ----- delivery to subscribers (on this thread) -----

const subscribers = new Map();
let nextSubscriberId = 1;
let delivering = 0;
let subscriberFailures = 0;

/**
 * Events batched for delivery, published by the addon (a Uint32Array over its counter). Past
 * HIGH_WATER, calls that emit drain inline before returning: a JS thread that never yields
 * would otherwise let the batch grow without bound (docs/node.md, "Delivery").
 */
const pending = new Uint32Array(native.pendingCounter());

/**
 * The addon's hint that an event emitted now would keep a host value (docs/node.md, "Host
 * values"): every global subscriber takes objects, no event middleware or scope-local
 * registration is alive. Refreshed by the addon after each entered call and registry change.
 */
const welcome = new Uint32Array(native.hostWelcome());
const HIGH_WATER = 8192;

function relieve() {
  if (pending[0] > HIGH_WATER && delivering === 0) drain();
}

/** A subscriber threw or its Promise rejected. */
function failed() {
  subscriberFailures++;
}

/**
 * The numbers of the segment `takeEvents` just took (`[deliveries, events, (id, index)...,
 * ends..., layouts...]`), over memory of the addon that each take rewrites: read before the
 * next take. A segment whose numbers do not fit comes with typed arrays of its own.
 */
const meta = new Uint32Array(native.metaBuffer());

function drain() {
  if (delivering > 0) return; // `meta` is being read
  for (;;) {
    const batch = native.takeEvents();
    if (batch === null) return;
    const text = batch[0];
    delivering++;
    try {
      if (batch.length === 2) {
        const nd = meta[0];
        const n = meta[1];
        deliverBatch(subscribers, failed, text, meta, 2 + nd + n, meta, 2 + nd, n, meta, 2, 2 + nd, batch[1]);
      } else {
        const d = batch[2];
        const ends = batch[3];
        deliverBatch(subscribers, failed, text, batch[4], 0, ends, 0, ends.length, d, 0, d.length, batch[1]);
      }
    } finally {
      delivering--;
    }
  }
}

function notInSubscriber(what) {
  if (delivering > 0) {
    throw new BatonError('invalid_state', `${what} cannot be called from inside a subscriber: it would re-enter the runtime`);
  }
}

// ----- helpers the addon calls -----

function watch(p, id) {
  p.then((v) => native.settle(id, true, v), (e) => native.settle(id, false, e));
}

function invoke(stack, fn, ...args) {
  return als.run(stack, fn, ...args);
}

function chunkStep(r) {
  return r.done ? undefined : enc(r.value, 'chunk');
}

/** The iterator the addon pulls: `next()` gives a chunk's JSON text, or undefined at the end. */
function iterOf(x, preferAsync) {
  const it = rawIterator(x, preferAsync);
  return {
    next() {
      const r = it.next();
      return isThenable(r) ? r.then(chunkStep) : chunkStep(r);
    },
    return() {
      return typeof it.return === 'function' ? it.return() : undefined;
    },
  };
}

native.init({ makeError, watch, invoke, iterOf, drain });

// ----- handles -----

const EXT = Symbol('baton.handle');

class Stack {
  constructor(ext) {
    this[EXT] = ext;
  }
  /** Runs `fn` with this stack current (also across its awaits). */
  run(fn) {
    return als.run(this[EXT], fn);
  }
  /** A new empty stack whose first scope is parented under this stack's current scope. */
  fork() {
    return new Stack(native.fork(this[EXT]));
  }
  propagationContext() {
    return native.propagationContext(this[EXT]);
  }
  traceparent() {
    return native.traceparent(this[EXT]);
  }
  get depth() {
    return native.stackDepth(this[EXT]);
  }
  get currentScope() {
    const s = native.currentScope(this[EXT]);
    return s === null ? null : new Scope(s);
  }
}

class Scope {
  constructor(ext) {
    this[EXT] = ext;
    this._info = undefined;
  }
  _get() {
    if (this._info === undefined) this._info = native.scopeInfo(this[EXT]);
    return this._info;
  }
  get uuid() { return this._get().uuid; }
  get name() { return this._get().name; }
  get category() { return this._get().category; }
  get parentUuid() { return this._get().parentUuid; }
  get rootUuid() { return this._get().rootUuid; }
  get ended() { return native.scopeInfo(this[EXT]).ended; }
}

class CallHandle {
  constructor(ext, kind) {
    this[EXT] = ext;
    this.kind = kind;
  }
  get uuid() { return native.callUuid(this[EXT]); }
  end(options) {
    native.callEnd(this[EXT], endOptions(options, this.kind === 'tool' ? 'result' : 'response'));
    relieve();
  }
}

function endOptions(options, key) {
  if (options === undefined || options === null) return undefined;
  return { output: options[key], metadata: options.metadata, error: options.error };
}

function ext(v, what, cls) {
  if (!(v instanceof cls)) throw makeError('invalid_argument', `${what}: expected a ${cls.name}`);
  return v[EXT];
}

function parentOpt(options, key = 'parent') {
  if (options === undefined || options === null) return options;
  const p = options[key];
  if (p === undefined || p === null) return options;
  return { ...options, [key]: ext(p, `options.${key}`, Scope) };
}

// ----- scopes, marks, stacks -----

function push(name, options) {
  const scope = new Scope(native.push(current(), name, parentOpt(options)));
  relieve();
  return scope;
}

function pop(scope, options) {
  native.pop(current(), ext(scope, 'scope', Scope), endOptions(options, 'output'));
  relieve();
}

/**
 * Runs `fn` in a new scope on a fork of the current stack. The addon holds the fork with the
 * scope pushed (`enterScope`); `fn`'s store is a lazy fork that asks for the fork's handle only
 * if `fn` uses the current stack, as an entered call's does.
 */
function withScope(name, fn, options) {
  const store = als.getStore();
  const base = baseOf(store);
  const entered = native.enterScope(base, name, parentOpt(options));
  const scope = new Scope(entered[1]);
  const lazy = lazyFork(store, base, enteredPosition[0], entered[0]);
  let r;
  try {
    r = als.run(lazy, fn, scope);
  } catch (e) {
    exitScoped(lazy, { error: e });
    throw e;
  }
  if (isThenable(r)) {
    return Promise.resolve(r).then(
      (v) => {
        exitScoped(lazy, undefined);
        return v;
      },
      (e) => {
        exitScoped(lazy, { error: e });
        throw e;
      },
    );
  }
  exitScoped(lazy, undefined);
  return r;
}

/** Ends the scope of a `withScope` (its end event), then relieves the delivery batch. */
function exitScoped(lazy, end) {
  native.exitScope(endForked(lazy), end);
  relieve();
}

function mark(name, options) {
  native.mark(currentBase(), name, parentOpt(options));
  relieve();
}

function metric(name, measurements, options) {
  native.metric(currentBase(), name, measurements, options);
  relieve();
}

function currentStack() {
  return new Stack(current());
}

function currentScope() {
  const s = native.currentScope(currentBase());
  return s === null ? null : new Scope(s);
}

function newStack() {
  return new Stack(native.newStack());
}

function fork() {
  return new Stack(native.fork(currentBase()));
}

function stackFromPropagation(context) {
  return new Stack(native.stackFromPropagation(context));
}

function runWithStack(stack, fn) {
  return als.run(ext(stack, 'stack', Stack), fn);
}

function propagationContext() {
  return native.propagationContext(currentBase());
}

function traceparent() {
  return native.traceparent(currentBase());
}

// ----- managed calls -----

function checkFn(fn) {
  if (typeof fn !== 'function') throw makeError('invalid_argument', 'callback: expected a function');
}

/**
 * Whether a tool call on `stack` is just its callback: nothing is registered anywhere (the
 * core's rule, `Stack::unobserved`; it throws what the call would after shutdown). The
 * facade then skips the round trips through the addon. Calls with options take the managed
 * path, which validates them.
 */
function bare(stack, name, options) {
  if (observed || !bareShape(name, options)) return false;
  if (native.unobserved(stack, false)) return true;
  observed = true;
  return false;
}

/**
 * True once the addon answered that calls are observed (something is registered), until a
 * call finds that nothing is or the facade removes registrations. Meanwhile calls skip that
 * question and go straight to `enterTool`, which answers `false` itself when nothing is
 * registered (and this resets). A stale true costs one `JSON.stringify` once; false always asks.
 */
let observed = false;

/** A call that may be bare: no options, a valid name. */
function bareShape(name, options) {
  return (options === undefined || options === null) && typeof name === 'string' && name !== '';
}

/** The result of a callback of a synchronous call: a Promise is refused, as the addon does. */
function syncResult(r) {
  notPromise(r, 'the callback of a synchronous call returned a Promise; use the async form');
  return own(r, 'returned value');
}

/** The function of an async call with nothing to observe it, on a lazy fork of the caller's stack. */
async function bareAsync(input, fn) {
  return own(await fn(input), 'returned value');
}

/**
 * A managed tool call. Not an `async function`: the common paths settle with one Promise
 * instead of three (an async function returning another async function's Promise adopts it
 * through extra microtask turns); every error still arrives as a rejection.
 */
function tool(name, args, fn, options) {
  try {
    notInSubscriber('tool');
    checkFn(fn);
    // An async call only reads the caller's stack (its function runs on a fork), so the
    // caller's LazyFork, if any, stays unmaterialized.
    const store = als.getStore();
    const stack = baseOf(store);
    if (!observed && bareShape(name, options)) {
      // `false`, or (nothing registered) the stack's position, for its pin.
      const id = native.unobserved(stack, true);
      if (id !== false) return als.run(lazyFork(store, stack, id), bareAsync, own(args, 'args'), fn);
      observed = true;
    }
    const token = hostValues.offer(args, welcome[0]);
    const text = token === 0 ? enc(args, 'args') : token;
    const exact = token !== 0 || encoded.exact;
    const entered = native.enterTool(stack, name, text, parentOpt(options), true, token === 0 ? undefined : hostValues.lastOffered());
    if (entered === false) {
      observed = false;
      return als.run(lazyFork(store, stack, native.currentId(stack)), bareAsync, exact ? args : parse(text), fn);
    }
    // Entered: the call runs on a fork the addon holds (token `entered`); its store makes the
    // fork's handle only if the function uses Baton.
    if (entered !== null) {
      const lazy = lazyFork(store, stack, enteredPosition[0], entered);
      return als.run(lazy, runEnteredAsync, lazy, exact ? args : parse(text), fn);
    }
    // The addon answers with a Promise, or with the text itself when the call settled at once.
    return Promise.resolve(native.tool(stack, name, token === 0 ? text : enc(args, 'args'), wrapCallback(fn), parentOpt(options), true)).then(managedResult, managedFailure);
  } catch (e) {
    return Promise.reject(e);
  }
}

function managedResult(text) {
  const r = parse(text);
  relieve();
  return r;
}

/** A managed call failed: its events were emitted all the same. */
function managedFailure(e) {
  relieve();
  throw e;
}

/**
 * A tool call whose values no middleware sees (only subscribers are registered): the addon
 * emitted its start event and pushed its scope (`enterTool`); the function runs here, on the
 * JS side, and `endEntered` emits the end event. Same events,
 * values and errors as the managed path, without the core future and the trampolines into JS.
 * The function gets the caller's own arguments and the caller its own result when they are
 * exactly their JSON form (`own`), else JSON copies, as the managed path gives.
 */
function runEnteredAsync(lazy, input, fn) {
  let r;
  try {
    r = fn(input);
  } catch (e) {
    return Promise.reject(failEntered(lazy, e));
  }
  if (isThenable(r)) {
    return Promise.resolve(r).then((v) => exitEntered(lazy, v), (e) => { throw failEntered(lazy, e); });
  }
  try {
    return Promise.resolve(exitEntered(lazy, r));
  } catch (e) {
    return Promise.reject(e);
  }
}

/** The token of an entered async call, taken to end it: the store makes forks of its pin after. */
function endForked(lazy) {
  const call = lazy.call;
  lazy.call = 0;
  return call;
}

/**
 * Ends an entered call: `entered` is a synchronous call's depth (`exitTool`) or an async call's
 * store, whose token it takes (`exitForked`). `out` is the result's text, or undefined with
 * `thrown`.
 */
function endEntered(entered, out, thrown, snapshot) {
  if (typeof entered === 'number') native.exitTool(entered, out, thrown, snapshot);
  else native.exitForked(endForked(entered), out, thrown, snapshot);
  relieve();
}

function runEnteredSync(entered, input, fn) {
  let r;
  try {
    r = fn(input);
    notPromise(r, 'the callback of a synchronous call returned a Promise; use the async form');
  } catch (e) {
    throw failEntered(entered, e);
  }
  return exitEntered(entered, r);
}

/** Ends an entered call with its function's result (a value that is not JSON fails it). */
function exitEntered(entered, r) {
  const token = hostValues.offer(r, welcome[0]);
  if (token !== 0) {
    endEntered(entered, token, undefined, hostValues.lastOffered());
    return r;
  }
  let out;
  try {
    out = encResult(r);
  } catch (e) {
    throw failEntered(entered, e);
  }
  const exact = encoded.exact;
  endEntered(entered, out);
  return exact ? r : parse(out);
}

/** Ends an entered call with the value its function threw; returns that value to rethrow. */
function failEntered(entered, thrown) {
  endEntered(entered, undefined, thrown);
  return thrown;
}

function toolSync(name, args, fn, options) {
  notInSubscriber('toolSync');
  checkFn(fn);
  if (bare(currentBase(), name, options)) return syncResult(fn(own(args, 'args')));
  // A synchronous call pushes its scope onto the caller's own stack.
  const stack = current();
  // A host value's token (its snapshot goes along for the text fallback), or the JSON text.
  const token = hostValues.offer(args, welcome[0]);
  const text = token === 0 ? enc(args, 'args') : token;
  const exact = token !== 0 || encoded.exact;
  const entered = native.enterTool(stack, name, text, parentOpt(options), false, token === 0 ? undefined : hostValues.lastOffered());
  if (entered === false) {
    observed = false;
    return syncResult(fn(exact ? args : parse(text)));
  }
  if (entered !== null) return runEnteredSync(entered, exact ? args : parse(text), fn);
  try {
    return parse(native.tool(stack, name, token === 0 ? text : enc(args, 'args'), wrapCallback(fn), parentOpt(options), false));
  } finally {
    relieve();
  }
}

/**
 * A managed LLM call. Entered (`enterLlm`: only subscribers see it), the function runs here on
 * a fork the addon holds, as an entered `tool` does, and gets the request the core checked;
 * otherwise the core's managed pipeline runs it. Not an `async function`, as `tool`.
 */
function llm(name, request, fn, options) {
  try {
    notInSubscriber('llm');
    checkFn(fn);
    const store = als.getStore();
    const stack = baseOf(store);
    const text = enc(request, 'request');
    const exact = encoded.exact;
    const entered = native.enterLlm(stack, name, text, parentOpt(options), true);
    if (entered !== null) {
      const lazy = lazyFork(store, stack, enteredPosition[0], entered[0]);
      return als.run(lazy, runEnteredAsync, lazy, llmInput(request, text, exact, entered[1]), fn);
    }
    return Promise.resolve(native.llm(stack, name, text, wrapCallback(fn), parentOpt(options), true)).then(managedResult, managedFailure);
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * The request an entered LLM call's function gets: the one the core checked when the check
 * changed it (`checked`), else the caller's own when it is exactly its JSON form, else its
 * JSON copy — what the managed path would hand on.
 */
function llmInput(request, text, exact, checked) {
  if (checked !== undefined) return parse(checked);
  return exact ? request : parse(text);
}

function llmSync(name, request, fn, options) {
  notInSubscriber('llmSync');
  checkFn(fn);
  const stack = current();
  const text = enc(request, 'request');
  const exact = encoded.exact;
  const entered = native.enterLlm(stack, name, text, parentOpt(options), false);
  if (entered !== null) return runEnteredSync(entered[0], llmInput(request, text, exact, entered[1]), fn);
  try {
    return parse(native.llm(stack, name, text, wrapCallback(fn), parentOpt(options), false));
  } finally {
    relieve();
  }
}

/**
 * A managed LLM stream: an async iterable of chunks, pulled lazily. Entered (`source` set:
 * only subscribers see the call), the facade pulls the source itself under the stream's
 * handle — the stack of the fork the call runs on, its scope current — and reports each
 * chunk to the addon; otherwise the core's stream machinery pulls it.
 */
class LlmStream {
  constructor(handle, source) {
    this[EXT] = handle;
    this._done = false;
    this._src = source;
  }
  next() {
    return this._src === undefined ? this._nextManaged() : this._nextEntered();
  }
  async _nextManaged() {
    if (this._done) return DONE;
    let v;
    try {
      v = await native.streamNext(this[EXT], true);
      if (v !== undefined) v = parse(v);
    } catch (e) {
      this._done = true;
      throw e;
    }
    if (v === undefined) {
      this._done = true;
      return DONE;
    }
    return { value: v, done: false };
  }
  async _nextEntered() {
    if (this._done) return DONE;
    let r;
    try {
      r = als.run(this[EXT], step, this._src);
      if (isThenable(r)) r = await r;
    } catch (e) {
      throw failStream(this, e);
    }
    return enteredChunk(this, r);
  }
  async return() {
    this.close();
    return DONE;
  }
  /** Stops reading: an unfinished stream ends as cancelled (and its source is closed). */
  close() {
    if (!this._done) {
      this._done = true;
      if (this._src === undefined) {
        native.streamClose(this[EXT]);
      } else {
        native.streamFinish(this[EXT], false, undefined);
        closeSource(this._src);
      }
    }
  }
  [Symbol.asyncIterator]() {
    return this;
  }
}

/** A managed LLM stream read synchronously (llmStreamSync); entered as `LlmStream` is. */
class LlmStreamSync {
  constructor(handle, source) {
    this[EXT] = handle;
    this._done = false;
    this._src = source;
  }
  next() {
    if (this._done) return DONE;
    if (this._src !== undefined) {
      let r;
      try {
        r = als.run(this[EXT], step, this._src);
        notPromise(r, 'the source of llmStreamSync gave a Promise; use llmStream');
      } catch (e) {
        throw failStream(this, e);
      }
      return enteredChunk(this, r);
    }
    let v;
    try {
      v = native.streamNext(this[EXT], false);
      if (v !== undefined) v = parse(v);
    } catch (e) {
      this._done = true;
      throw e;
    }
    if (v === undefined) {
      this._done = true;
      return DONE;
    }
    return { value: v, done: false };
  }
  return() {
    this.close();
    return DONE;
  }
  close() {
    LlmStream.prototype.close.call(this);
  }
  [Symbol.iterator]() {
    return this;
  }
}

/** Ends an entered stream with the value its source threw; returns that value to rethrow. */
function failStream(s, e) {
  s._done = true;
  native.streamFinish(s[EXT], false, e);
  relieve();
  return e;
}

/** One step of an entered stream's source: the chunk, reported to the addon, or the end. */
function enteredChunk(s, r) {
  if (r === null || typeof r !== 'object') {
    throw failStream(s, new TypeError(`the stream's iterator returned ${r === null ? 'null' : typeof r}, not an iterator result`));
  }
  const h = s[EXT];
  if (r.done) {
    s._done = true;
    native.streamFinish(h, true);
    relieve();
    return DONE;
  }
  let text;
  try {
    text = enc(r.value, 'chunk');
  } catch (e) {
    closeSource(s._src);
    throw failStream(s, e);
  }
  const exact = encoded.exact;
  native.streamChunk(h, text);
  relieve();
  return { value: exact ? r.value : parse(text), done: false };
}

async function llmStream(name, request, fn, options) {
  notInSubscriber('llmStream');
  checkFn(fn);
  const stack = currentBase();
  const text = enc(request, 'request');
  const entered = native.enterLlmStream(stack, name, text, parentOpt(options));
  if (entered !== null) {
    const s = new LlmStream(entered[0], undefined);
    try {
      let r = als.run(s[EXT], fn, parse(entered[1]));
      if (isThenable(r)) r = await r;
      s._src = rawIterator(r, true);
    } catch (e) {
      throw failStream(s, e);
    }
    return s;
  }
  const cb = (t) => fn(parse(t));
  const handle = await native.llmStream(stack, name, text, cb, parentOpt(options), true);
  return new LlmStream(handle, undefined);
}

function llmStreamSync(name, request, fn, options) {
  notInSubscriber('llmStreamSync');
  checkFn(fn);
  const text = enc(request, 'request');
  const entered = native.enterLlmStream(currentBase(), name, text, parentOpt(options));
  if (entered !== null) {
    const s = new LlmStreamSync(entered[0], undefined);
    try {
      const r = als.run(s[EXT], fn, parse(entered[1]));
      s._src = rawIterator(notPromise(r, 'the callback of llmStreamSync returned a Promise; use llmStream'), false);
    } catch (e) {
      throw failStream(s, e);
    }
    return s;
  }
  const cb = (t) => fn(parse(t));
  // Pulled synchronously, the stream's scope is pushed onto the caller's own stack.
  return new LlmStreamSync(native.llmStream(current(), name, text, cb, parentOpt(options), false), undefined);
}

// ----- manual lifecycle and standalone helpers -----

function toolStart(name, args, options) {
  const handle = new CallHandle(native.toolStart(current(), name, args, parentOpt(options)), 'tool');
  relieve();
  return handle;
}

function llmStart(name, request, options) {
  const handle = new CallHandle(native.llmStart(current(), name, request, parentOpt(options)), 'llm');
  relieve();
  return handle;
}

function toolEnd(handle, options) {
  ext(handle, 'handle', CallHandle);
  handle.end(options);
}

function llmEnd(handle, options) {
  ext(handle, 'handle', CallHandle);
  handle.end(options);
}

async function toolConditionalExecution(name, args) {
  notInSubscriber('toolConditionalExecution');
  await native.conditionalExecution(currentBase(), 'tool', name, args, true);
}

function toolConditionalExecutionSync(name, args) {
  notInSubscriber('toolConditionalExecutionSync');
  native.conditionalExecution(current(), 'tool', name, args, false);
}

async function llmConditionalExecution(name, request) {
  notInSubscriber('llmConditionalExecution');
  await native.conditionalExecution(currentBase(), 'llm', name, request, true);
}

function llmConditionalExecutionSync(name, request) {
  notInSubscriber('llmConditionalExecutionSync');
  native.conditionalExecution(current(), 'llm', name, request, false);
}

async function toolRequestIntercepts(name, args) {
  notInSubscriber('toolRequestIntercepts');
  return parse(await native.requestIntercepts(currentBase(), 'tool', name, args, true));
}

function toolRequestInterceptsSync(name, args) {
  notInSubscriber('toolRequestInterceptsSync');
  return parse(native.requestIntercepts(current(), 'tool', name, args, false));
}

async function llmRequestIntercepts(name, request) {
  notInSubscriber('llmRequestIntercepts');
  return parse(await native.requestIntercepts(currentBase(), 'llm', name, request, true));
}

function llmRequestInterceptsSync(name, request) {
  notInSubscriber('llmRequestInterceptsSync');
  return parse(native.requestIntercepts(current(), 'llm', name, request, false));
}

// ----- middleware -----

/** What execution and stream intercepts receive besides their input. */
class CallContext {
  constructor(ctxExt, info) {
    this[EXT] = ctxExt;
    this.info = info;
  }
  /** Queues a mark emitted right after the call's end event, parented under the call. */
  queueMark(name, options) {
    const o = options || {};
    native.queueMark(this[EXT], name, o.data === undefined ? null : o.data, o.metadata === undefined ? null : o.metadata);
  }
}

/** The inner chunks a stream intercept wraps: iterable with `for await` (or `for` in sync streams). */
class ChunkSource {
  constructor(handle) {
    this[EXT] = handle;
  }
  [Symbol.asyncIterator]() {
    const h = this[EXT];
    let done = false;
    return {
      async next() {
        if (done) return DONE;
        const v = await native.chunksNext(h, true);
        if (v === undefined) {
          done = true;
          return DONE;
        }
        return { value: parse(v), done: false };
      },
      async return() {
        done = true;
        return DONE;
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }
  [Symbol.iterator]() {
    const h = this[EXT];
    let done = false;
    return {
      next() {
        if (done) return DONE;
        const v = native.chunksNext(h, false);
        if (v === undefined) {
          done = true;
          return DONE;
        }
        return { value: parse(v), done: false };
      },
      return() {
        done = true;
        return DONE;
      },
      [Symbol.iterator]() {
        return this;
      },
    };
  }
}

function registerOptions(options) {
  if (options === undefined || options === null) return undefined;
  if (options.scope === undefined || options.scope === null) return options;
  return { ...options, scope: ext(options.scope, 'options.scope', Scope) };
}

/** Adapts a user function to the addon's calling convention (JSON text in and out). */
function adapt(kind, fn, options) {
  switch (kind) {
    case 'tool_conditional_execution':
    case 'llm_conditional_execution':
      return (text, info) => fn(parse(text), parse(info));
    case 'tool_request_intercept':
    case 'llm_request_intercept':
      return (text, info) => {
        const r = fn(parse(text), parse(info));
        return isThenable(r) ? r.then(encOptional) : encOptional(r);
      };
    case 'tool_execution_intercept':
    case 'llm_execution_intercept':
      if (options && options.sync) {
        return (text, token, c, info) => {
          const input = parse(text);
          const next = (v) => parse(native.callNextSync(token, enc(v === undefined ? input : v, 'input')));
          return encResult(fn(input, next, new CallContext(c, parse(info))));
        };
      }
      return (text, n, c, info) => {
        const input = parse(text);
        const next = async (v) => parse(await native.callNext(n, enc(v === undefined ? input : v, 'input')));
        const r = fn(input, next, new CallContext(c, parse(info)));
        return isThenable(r) ? r.then(encResult) : encResult(r);
      };
    case 'llm_stream_execution_intercept':
      return (chunks, c, info) => fn(new ChunkSource(chunks), new CallContext(c, parse(info)));
    case 'tool_sanitize_request':
    case 'tool_sanitize_response':
    case 'llm_sanitize_request':
    case 'llm_sanitize_response':
      return (text, info) => encOptional(fn(parse(text), parse(info)));
    case 'mark_sanitize':
    case 'scope_sanitize_start':
    case 'scope_sanitize_end':
      return (text, info) => {
        const r = fn(parse(text), parse(info));
        if (r === undefined || r === null) return undefined;
        return enc({ data: r.data === undefined ? null : r.data, metadata: r.metadata }, 'returned fields');
      };
    case 'event_metadata_injector':
      return (info) => {
        const r = fn(parse(info));
        return r === undefined || r === null ? undefined : enc(r, 'returned metadata');
      };
    default:
      return fn;
  }
}

function register(kind, name, fn, options) {
  if (typeof fn !== 'function') throw makeError('invalid_argument', 'middleware: expected a function');
  if (kind === 'subscriber') {
    const json = subscriberFormat(options);
    const id = nextSubscriberId++;
    subscribers.set(id, { fn, json });
    try {
      native.register(kind, name, null, registerOptions(withoutFormat(options)), id, !json);
    } catch (e) {
      subscribers.delete(id);
      throw e;
    }
    return;
  }
  native.register(kind, name, adapt(kind, fn, options), registerOptions(options), undefined);
}

function deregister(kind, name, options) {
  const scope = options && options.scope ? ext(options.scope, 'options.scope', Scope) : null;
  observed = false;
  return native.deregister(kind, name, scope);
}

/** `format: 'json'` hands a subscriber each event's JSON text instead of an object. */
function subscriberFormat(options) {
  const f = options === undefined || options === null ? undefined : options.format;
  if (f === undefined || f === 'object') return false;
  if (f === 'json') return true;
  throw makeError('invalid_argument', `options.format: expected 'object' or 'json', got ${JSON.stringify(f) ?? String(f)}`);
}

function withoutFormat(options) {
  if (options === undefined || options === null || !('format' in options)) return options;
  const { format: _format, ...rest } = options;
  return rest;
}

function subscribe(name, fn, options) {
  register('subscriber', name, fn, options);
}

// ----- delivery and lifecycle -----

function timeoutOf(options) {
  if (options === undefined || options === null || options.timeout === undefined) return 30000;
  return options.timeout;
}

async function flush(options) {
  notInSubscriber('flush');
  const before = hostValues.mark();
  const ok = await native.flush(timeoutOf(options));
  drain();
  // Everything queued before the flush is delivered: snapshots offered before it that no
  // delivery took belong to events that fell back to text or that nobody saw.
  if (ok) hostValues.dropBefore(before);
  return ok;
}

async function shutdown(options) {
  notInSubscriber('shutdown');
  observed = false;
  const before = hostValues.mark();
  const ok = await native.shutdown(timeoutOf(options));
  drain();
  if (ok) hostValues.dropBefore(before);
  return ok;
}

function diagnostics() {
  const d = native.diagnostics();
  d.subscriberFailures += subscriberFailures;
  return d;
}

function configure(options) {
  native.configure(options || {});
}

function isShutdown() {
  return native.isShutdown();
}

/** Plugin configuration (the `plugins.toml` document, as JSON). */
const plugins = Object.freeze({
  /** Checks a document; pure. Returns the diagnostics. */
  validate(config) {
    return native.pluginValidate(config);
  },
  /** Validates, replaces the active configuration and reports what was installed. */
  initialize(config) {
    return native.pluginInitialize(config);
  },
  /** Removes everything the active configuration installed. */
  clear() {
    observed = false;
    native.pluginClear();
  },
});

/** Provider codecs: `openai_chat`, `openai_responses`, `anthropic_messages`, `gemini_generate_content` or `auto`. */
const codecs = Object.freeze({
  /** The normalized form of a provider request (`null` when `auto` recognizes nothing). */
  decodeRequest(codec, request) {
    return native.codec('decodeRequest', codec, request);
  },
  /** Encodes an edited normalized request back onto the original, losslessly. */
  encodeRequest(codec, normalized, original) {
    return native.codec('encodeRequest', codec, normalized, original);
  },
  decodeResponse(codec, response) {
    return native.codec('decodeResponse', codec, response);
  },
  /** The normalized response of a whole stream of chunks. */
  aggregateStream(codec, chunks) {
    return native.codec('aggregateStream', codec, chunks);
  },
});

module.exports = {
  codecs,
  BatonError,
  ERROR_KINDS,
  MIDDLEWARE_KINDS,
  Stack,
  Scope,
  CallHandle,
  CallContext,
  ChunkSource,
  LlmStream,
  LlmStreamSync,
  configure,
  push,
  pop,
  withScope,
  mark,
  metric,
  currentStack,
  currentScope,
  newStack,
  fork,
  stackFromPropagation,
  runWithStack,
  propagationContext,
  traceparent,
  tool,
  toolSync,
  llm,
  llmSync,
  llmStream,
  llmStreamSync,
  toolStart,
  toolEnd,
  llmStart,
  llmEnd,
  toolConditionalExecution,
  toolConditionalExecutionSync,
  llmConditionalExecution,
  llmConditionalExecutionSync,
  toolRequestIntercepts,
  toolRequestInterceptsSync,
  llmRequestIntercepts,
  llmRequestInterceptsSync,
  register,
  deregister,
  subscribe,
  flush,
  shutdown,
  diagnostics,
  isShutdown,
  plugins,
};
