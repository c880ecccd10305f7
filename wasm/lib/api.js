// Baton for WebAssembly: the facade over the wasm-bindgen module (crates/wasm).
// This file is a template body: scripts/build.mjs wraps it into dist/index.cjs (Node, CommonJS),
// dist/index.mjs (Node, ESM) and dist/web.mjs (browsers and edge runtimes, explicit init()).
// It defines createApi(native, host), which returns the public API (the same names as node/);
// `host.nextTick` (Node's process.nextTick, passed by dist/index.cjs) changes how deliveries
// are scheduled (see scheduleDrain).
//
// Every rule lives in the Rust core. Values cross as JSON text. There are no threads: the core
// queues events and this facade delivers them with native.drain() on a microtask, on flush()
// and on shutdown().

/* exported createApi -- called by the wrappers scripts/build.mjs generates */
function createApi(native, host = {}) {
  // Errors, the JSON boundary, event objects and stream helpers: the modules of node/lib/,
  // which scripts/build.mjs embeds as `common`.
  const {
    ERROR_KINDS, MIDDLEWARE_KINDS, BatonError, makeError, isThenable, notPromise,
    parse, enc, encoded, own, LAYOUT, deliverBatch, lazyForks, DONE, rawIterator, step, closeSource,
  } = common;

  // ----- calling into the module: errors, traps -----

  // A Rust panic aborts the wasm instance's current call (`RuntimeError: unreachable`). Locks
  // and borrows it held stay held, so the instance is not trusted afterwards: every later call
  // fails with `internal` too, naming the original panic. Reload the module to recover.
  let poisoned = null;

  function convert(e) {
    if (e !== null && typeof e === 'object' && e.__batonError === true) {
      return makeError(e.code, e.message, e.detail === undefined ? undefined : JSON.parse(e.detail));
    }
    if (typeof WebAssembly !== 'undefined' && e instanceof WebAssembly.RuntimeError) {
      let msg;
      try {
        msg = native.lastPanic();
        if (typeof msg === 'string') msg = msg.replace(/\s*\n\s*/g, ' ');
      } catch {
        msg = undefined;
      }
      poisoned = `the wasm module trapped (${msg || e.message}); its state is no longer trusted, reload the module`;
      return new BatonError('internal', `panic: ${msg || e.message}`);
    }
    return e;
  }

  /** Calls a native export, converting its errors; every emitting call schedules a drain. */
  function call(fn, ...args) {
    if (poisoned !== null) throw new BatonError('internal', poisoned);
    try {
      return fn(...args);
    } catch (e) {
      throw convert(e);
    } finally {
      scheduleDrain();
    }
  }



  // ----- delivery (no threads: a microtask drains the queue) -----
  //
  // The module batches the events for the subscribers registered here (each event's ATOF
  // JSON written once, back to back in one text) and records who receives which event;
  // takeEvents(), takenMeta() and takenText() hand a batch over (layout and text read straight
  // from the module's memory: takeMeta, batchText). Each event is sliced out of the text and
  // parsed at most once, shared by every subscriber that wants objects
  // (`format: 'json'` subscribers get the text itself). Subscribers run here, outside any
  // wasm call.

  const subscribers = new Map(); // facade id -> {fn, json}
  let nextSubscriberId = 1;
  let drainScheduled = false;
  // Subscribers that threw or whose Promise rejected.
  let subscriberFailures = 0;
  let delivering = 0;
  /**
   * Events waiting (queued in the core or batched in the module) past which a call that emits
   * delivers inline before returning: a loop that never yields would otherwise fill the
   * core's whole queue (65,536 events by default) before anything is delivered. Small batches
   * also stay in the CPU's caches (wasm.md measures the difference).
   */
  const HIGH_WATER = 256;
  /**
   * Module calls since the last drain. Where the module reports how many events wait
   * (`relieve`), HIGH_WATER applies; every call that may emit (push, pop, mark, withScope,
   * manual handles, failing calls, ...) also counts here, and past CALLS_HIGH_WATER of them the
   * next one delivers inline: a synchronous loop of `push`/`pop` used to batch every event
   * until the loop ended.
   */
  const CALLS_HIGH_WATER = 128;
  let undrained = 0;

  // Node's Buffer copies an ASCII batch into a one-byte string (Latin-1 is ASCII's superset)
  // several times faster than TextDecoder, which browsers and edge runtimes use.
  const NodeBuffer = typeof Buffer === 'function' && typeof Buffer.from === 'function' ? Buffer : null;
  const utf8 = new TextDecoder();

  // The layout of the batch just taken, copied out of the module's memory into one array
  // reused batch after batch (a new typed array per batch cost more than a small batch's
  // delivery: an async call is delivered on its own microtask). Only `runDrain` uses it, and
  // never re-entrantly.
  let metaBuffer = new Uint32Array(4096);
  let metaLength = 0;
  function takeMeta() {
    const view = native.takenMeta();
    if (view.length > metaBuffer.length) metaBuffer = new Uint32Array(Math.max(view.length, 2 * metaBuffer.length));
    metaBuffer.set(view);
    metaLength = view.length;
    return metaBuffer;
  }

  /** The text of the batch just taken: `len` bytes, `units` UTF-16 units (equal when ASCII). */
  function batchText(len, units) {
    const view = native.takenText();
    if (NodeBuffer !== null && units === len) return NodeBuffer.from(view.buffer, view.byteOffset, len).toString('latin1');
    return utf8.decode(view);
  }

  // The drain runs on a microtask, but not necessarily the first: while calls keep emitting
  // it hops to a later microtask, so an awaited loop of calls is delivered in batches instead
  // of once per call (a drain's own cost — the hand-over, the batch text, one parse — was most
  // of what delivering one async call's two events cost). Each hop lets one more round of
  // continuations run. The drain runs once IDLE_HOPS hops in a row saw no new call (an async
  // stream's chunks are a few microtasks apart: a pull, the source's generator, the consumer's
  // `for await`), or after MAX_HOPS; always before the next task (timer, I/O, message), since
  // every hop is a microtask. HIGH_WATER still delivers inline; `flush` delivers everything at
  // once. While calls keep coming, the count of calls (CALLS_HIGH_WATER, inline) is what ends a
  // batch: MAX_HOPS only bounds a chain of hops that sees few calls. At 64 hops (about 21
  // awaited calls) it cut batches short; at 512, same-process A/B: async `tool` 0.98–0.99, async
  // stream per chunk 0.975–0.988.
  //
  // A hop is a reaction on one settled Promise, not `queueMicrotask`: Node's `queueMicrotask`
  // makes an AsyncResource per call (~250 ns against ~150 ns here, with AsyncLocalStorage
  // active), and an awaited call takes about three hops.
  //
  // On Node (dist/index.cjs passes `host.nextTick`) there are no hops: the drain is one
  // `process.nextTick`. Node runs a tick queued from a microtask only once the microtask queue
  // is empty, and still before the next task, so an awaited loop is delivered when it yields
  // (or by CALLS_HIGH_WATER while it runs) without a Promise reaction per hop, which
  // AsyncLocalStorage's hooks make cost ~150 ns each on Node 20 (same-process A/B, async
  // `tool` with one subscriber: 0.95–0.97). A microtask chain that emits and then runs long
  // without emitting is delivered when it ends rather than after four idle hops: the Node
  // addon delivers later still (on a task). Browsers and edge runtimes (dist/web.mjs) keep the
  // hops: they have no such queue, and a shim (bundlers' `process`) may be a timer.
  const IDLE_HOPS = 4;
  const MAX_HOPS = 512;
  const SETTLED = Promise.resolve();
  const nextTick = typeof host.nextTick === 'function' ? host.nextTick : null;
  let emitted = false; // a call emitted since the last hop
  let hops = 0;
  let idleHops = 0;

  function scheduleDrain() {
    if (++undrained > CALLS_HIGH_WATER && delivering === 0) runDrain();
    if (drainScheduled) {
      emitted = true;
      return;
    }
    if (poisoned !== null) return;
    drainScheduled = true;
    if (nextTick !== null) {
      nextTick(scheduledDrain);
      return;
    }
    emitted = false;
    hops = 0;
    idleHops = 0;
    SETTLED.then(onHop);
  }

  /** The drain that scheduleDrain scheduled (by a tick, or at the end of the hops). */
  function scheduledDrain() {
    drainScheduled = false;
    runDrain();
  }

  function onHop() {
    if (emitted) {
      emitted = false;
      idleHops = 0;
    } else {
      idleHops++;
    }
    if (idleHops < IDLE_HOPS && hops < MAX_HOPS && poisoned === null) {
      hops++;
      SETTLED.then(onHop);
      return;
    }
    scheduledDrain();
  }

  function relieve(batched) {
    if (batched > HIGH_WATER && delivering === 0) runDrain();
  }

  function runDrain() {
    if (delivering > 0) return;
    undrained = 0;
    for (;;) {
      if (poisoned !== null) return;
      let text;
      let meta;
      try {
        const len = native.takeEvents();
        if (len < 0) return;
        meta = takeMeta();
        const n = meta[0];
        text = batchText(len, n === 0 ? 0 : meta[n]);
      } catch (e) {
        // A trap while delivering: remember it; the next call reports it.
        convert(e);
        return;
      }
      deliver(text, meta, metaLength);
    }
  }

  function deliver(text, meta, end) {
    const n = meta[0];
    delivering++;
    try {
      deliverBatch(subscribers, failed, text, meta, 1 + n, meta, 1, n, meta, 1 + n + n * LAYOUT, end);
    } finally {
      delivering--;
    }
  }

  /** A subscriber threw or its Promise rejected. */
  function failed() {
    subscriberFailures++;
  }

  function notInSubscriber(what) {
    if (delivering > 0) {
      throw new BatonError('invalid_state', `${what} cannot be called from inside a subscriber: it would re-enter the runtime`);
    }
  }

  // ----- the current stack -----
  // In Node, AsyncLocalStorage keeps the current stack across awaits (as in node/). Elsewhere
  // it is a synchronous variable: runWithStack sets it for the duration of `fn` only.

  let als = null;
  try {
    const gbm = typeof process !== 'undefined' && process && process.getBuiltinModule;
    if (typeof gbm === 'function') {
      const { AsyncLocalStorage } = gbm('node:async_hooks');
      als = new AsyncLocalStorage();
    }
  } catch {
    als = null;
  }
  let syncCurrent;
  const defaultStack = native.newStack();

  function store() {
    return als !== null ? als.getStore() : syncCurrent;
  }

  // The current stack, lazy forks and their pins: node/lib/forks.js, as in node/.
  const { current, currentBase, baseOf, lazyFork } = lazyForks((s) => call(native.fork, s), store, defaultStack, (id) => native.enteredStack(id) ?? null);

  function runWith(stack, fn, ...args) {
    if (als !== null) return als.run(stack, fn, ...args);
    const prev = syncCurrent;
    syncCurrent = stack;
    try {
      return fn(...args);
    } finally {
      syncCurrent = prev;
    }
  }

  // ----- handles -----

  const EXT = Symbol('baton.handle');

  class Stack {
    constructor(ext) {
      this[EXT] = ext;
    }
    run(fn) {
      return runWith(this[EXT], fn);
    }
    fork() {
      return new Stack(call(native.fork, this[EXT]));
    }
    propagationContext() {
      return parse(call(native.propagationContext, this[EXT]));
    }
    traceparent() {
      return call(native.traceparent, this[EXT]);
    }
    get depth() {
      return call(native.stackDepth, this[EXT]);
    }
    get currentScope() {
      const s = call(native.currentScope, this[EXT]);
      return s === undefined || s === null ? null : new Scope(s);
    }
  }

  class Scope {
    constructor(ext) {
      this[EXT] = ext;
      this._info = undefined;
    }
    _get() {
      if (this._info === undefined) this._info = parse(call(() => this[EXT].info()));
      return this._info;
    }
    get uuid() { return this._get().uuid; }
    get name() { return this._get().name; }
    get category() { return this._get().category; }
    get parentUuid() { return this._get().parentUuid; }
    get rootUuid() { return this._get().rootUuid; }
    get ended() { return call(() => this[EXT].ended); }
  }

  function ext(v, what, cls) {
    if (!(v instanceof cls)) throw makeError('invalid_argument', `${what}: expected a ${cls.name}`);
    return v[EXT];
  }

  /** A fresh native handle for an optional scope option (the native side takes ownership). */
  function scopeArg(options, key, what) {
    if (options === undefined || options === null) return undefined;
    const p = options[key];
    if (p === undefined || p === null) return undefined;
    return ext(p, what, Scope).cloneHandle();
  }

  function optsJson(options, keys, path) {
    if (options === undefined || options === null) return undefined;
    if (typeof options !== 'object') throw makeError('invalid_argument', `${path}: expected an object`);
    const o = {};
    for (const k of keys) if (options[k] !== undefined) o[k] = options[k];
    return enc(o, path);
  }

  const SCOPE_KEYS = ['category', 'input', 'metadata', 'attributes', 'categoryProfile', 'dataSchema'];
  const MARK_KEYS = ['data', 'metadata', 'category', 'categoryProfile', 'dataSchema'];
  const TOOL_KEYS = ['toolCallId', 'metadata', 'attributes'];

  // ----- scopes, marks, stacks -----

  function push(name, options) {
    return new Scope(call(native.push, current(), name, optsJson(options, SCOPE_KEYS, 'options'), scopeArg(options, 'parent', 'options.parent')));
  }

  function popOn(stack, scope, options) {
    const opts = options === undefined || options === null ? undefined : { output: options.output, metadata: options.metadata };
    const error = options && options.error !== undefined ? options.error : undefined;
    call(native.pop, stack, ext(scope, 'scope', Scope), optsJson(opts, ['output', 'metadata'], 'options'), error);
  }

  function pop(scope, options) {
    popOn(current(), scope, options);
  }

  function withScope(name, fn, options) {
    const stack = call(native.fork, currentBase());
    const scope = new Scope(call(native.push, stack, name, optsJson(options, SCOPE_KEYS, 'options'), scopeArg(options, 'parent', 'options.parent')));
    let r;
    try {
      r = runWith(stack, fn, scope);
    } catch (e) {
      popOn(stack, scope, { error: e });
      throw e;
    }
    if (isThenable(r)) {
      return Promise.resolve(r).then(
        (v) => {
          popOn(stack, scope);
          return v;
        },
        (e) => {
          popOn(stack, scope, { error: e });
          throw e;
        },
      );
    }
    popOn(stack, scope);
    return r;
  }

  function mark(name, options) {
    call(native.mark, currentBase(), name, optsJson(options, MARK_KEYS, 'options'), scopeArg(options, 'parent', 'options.parent'));
  }

  function metric(name, measurements, options) {
    const unit = options && options.unit !== undefined ? options.unit : undefined;
    call(native.metric, currentBase(), name, enc(measurements, 'measurements'), unit);
  }

  const currentStack = () => new Stack(current());
  function currentScope() {
    const s = call(native.currentScope, currentBase());
    return s === undefined || s === null ? null : new Scope(s);
  }
  const newStack = () => new Stack(call(native.newStack));
  const fork = () => new Stack(call(native.fork, currentBase()));
  const stackFromPropagation = (context) => new Stack(call(native.stackFromPropagation, enc(context, 'context')));
  const runWithStack = (stack, fn) => runWith(ext(stack, 'stack', Stack), fn);
  const propagationContext = () => parse(call(native.propagationContext, currentBase()));
  const traceparent = () => call(native.traceparent, currentBase());

  // ----- managed calls -----

  function checkFn(fn) {
    if (typeof fn !== 'function') throw makeError('invalid_argument', 'callback: expected a function');
  }

  /** The callback the native side calls: JSON text in, JSON text out, synchronously. */
  function syncCallback(fn, stack, what) {
    return (text) => {
      const r = runWith(stack, fn, parse(text));
      notPromise(r, `${what}: the callback of a synchronous call returned a Promise; use the async form`);
      return enc(r, 'returned value');
    };
  }

  /** The result of the callback of a synchronous call: a Promise is refused, as on the managed path. */
  function syncResult(r, what) {
    notPromise(r, `${what}: the callback of a synchronous call returned a Promise; use the async form`);
    return encResult(r);
  }

  /**
   * How a tool call runs, asked of the module before the managed path (the rule stays in the
   * core): `1` nothing is registered, the call is just its function; `0` middleware sees the
   * values, take the managed path; otherwise the id of a call the module entered (start event
   * emitted, scope pushed on `stack`) that this facade runs and ends with `exitTool`: only
   * subscribers (and event middleware) see it, so the function needs no trip through the core.
   * (A call without options asks `unobserved` first, through `bare`, which takes no text.)
   * `enter` is `native.enterTool` or `native.enterLlm` (the same answers, except that an LLM
   * call takes the managed path, 0, when nothing is registered), `keys` its options' keys;
   * with `fork` (async calls) the call is entered on a fork of `stack`.
   */
  function enterCall(enter, keys, stack, name, text, options, fork) {
    if (poisoned !== null) throw new BatonError('internal', poisoned);
    let how;
    try {
      how = enter(stack, name, text, optsJson(options, keys, 'options'), scopeArg(options, 'parent', 'options.parent'), fork);
    } catch (e) {
      throw convert(e);
    }
    if (how === FAILED) throw convert(native.takeError());
    return how;
  }

  /**
   * What the module's per-call functions (`enterTool`, `enterLlm`, `exitTool`, `failTool`, an
   * entered stream's `chunk`) answer when they fail; `takeError()` then gives the error. They
   * answer a number, not a value or a thrown error: a wasm function that can fail returns
   * several values, which V8 hands to JS as a new array on every call.
   */
  const FAILED = 0xffffffff;

  /**
   * Runs an entered synchronous call's function and ends the call (`exitTool`); `what` names
   * the call in the error for a Promise.
   */
  function runEnteredSync(id, input, fn, what) {
    let r;
    let out;
    try {
      r = fn(input);
      out = syncResult(r, what);
    } catch (e) {
      exitTool(id, undefined, e);
      throw e;
    }
    const exact = encoded.exact;
    exitTool(id, out);
    return exact ? r : parse(out);
  }

  /**
   * Ends an entered call: `out` is the result's JSON text, or undefined with `thrown` (the
   * module's `failTool`: the common exit passes no JS value).
   */
  function exitTool(id, out, thrown) {
    if (out === undefined) counted(native.failTool, undefined, id, thrown);
    else counted(native.exitTool, undefined, id, out);
  }

  /**
   * Calls `fn` on `self` (undefined for a module function, the stream for an entered stream's
   * `chunk`), a module function that answers how many events wait in the batch, or FAILED:
   * converts what it throws or the error `takeError` holds, schedules the drain and relieves
   * the batch. No closure per call: these run once or twice per call or chunk.
   */
  function counted(fn, self, a, b) {
    let batched;
    try {
      batched = fn.call(self, a, b);
    } catch (e) {
      throw convert(e);
    } finally {
      scheduleDrain();
    }
    if (batched === FAILED) throw convert(native.takeError());
    relieve(batched);
  }

  function toolSync(name, args, fn, options) {
    notInSubscriber('toolSync');
    checkFn(fn);
    if (poisoned === null && bare(currentBase(), name, options)) return ownResult(fn(own(args, 'args')), 'tool');
    // A synchronous call pushes its scope onto the caller's own stack.
    const stack = current();
    const text = enc(args, 'args');
    const input = encoded.exact ? args : undefined;
    const how = enterCall(native.enterTool, TOOL_KEYS, stack, name, text, options, false);
    if (how === 1) {
      observed = false;
      return ownResult(fn(input === undefined ? parse(text) : input), 'tool');
    }
    if (how !== 0) return runEnteredSync(how, input === undefined ? parse(text) : input, fn, 'tool');
    const out = call(native.tool, stack, name, text, syncCallback(fn, stack, 'tool'), optsJson(options, TOOL_KEYS, 'options'), scopeArg(options, 'parent', 'options.parent'));
    return parse(out);
  }

  /** Whether a call without options on `stack` is just its function (nothing registered). */
  function bare(stack, name, options) {
    if (observed || !bareShape(name, options)) return false;
    if (unobservedAt(stack) >= 0) return true;
    observed = true;
    return false;
  }

  /**
   * True once the module answered that calls are observed (something is registered), until a
   * call finds that nothing is or the facade removes registrations: meanwhile calls skip that
   * question and go straight to `enterTool`, which answers 1 itself when nothing is registered
   * (and this resets). A stale true costs one `JSON.stringify` once; false always asks.
   */
  let observed = false;

  /** A call that may be bare: no options, a valid name. */
  function bareShape(name, options) {
    return (options === undefined || options === null) && typeof name === 'string' && name !== '';
  }

  /** -1 when something is registered, else the position of `stack` (for its pin). */
  function unobservedAt(stack) {
    let at;
    try {
      at = native.unobserved(stack);
    } catch (e) {
      throw convert(e);
    }
    if (at === -2) throw convert(native.takeError());
    return at;
  }

  /** A synchronous call's result handed back as it is when exact, else its JSON copy. */
  function ownResult(r, what) {
    notPromise(r, `${what}: the callback of a synchronous call returned a Promise; use the async form`);
    return own(r, 'returned value');
  }

  // ----- async calls: the native side polls a task; Promises are settled back into it -----

  const tasks = new Map(); // task id -> {resolve, reject}
  native.setScheduler((id) => queueMicrotask(() => pollTask(id)));

  function pollTask(id) {
    if (poisoned !== null) return;
    let r;
    try {
      r = native.pollTask(id);
    } catch (e) {
      const t = tasks.get(id);
      tasks.delete(id);
      if (t) t.reject(convert(e));
      return;
    } finally {
      scheduleDrain();
    }
    if (r === undefined) return;
    const t = tasks.get(id);
    tasks.delete(id);
    if (t === undefined) return;
    if (r.ok) t.resolve(r.value);
    else t.reject(convert(r.error));
  }

  /** A Promise of a native task's value (polled once right away, then whenever it is woken). */
  function runTask(id) {
    const p = new Promise((resolve, reject) => tasks.set(id, { resolve, reject }));
    pollTask(id);
    return p;
  }

  /** A native task whose value is JSON text (or undefined). */
  async function jsonTask(id) {
    const v = await runTask(id);
    return v === undefined ? undefined : parse(v);
  }

  /**
   * The result of a callback the native side may wait for: `encode(r)` now, or for a
   * Promise `{pending: id}`, settled (with `encode(value)` or the thrown value) when it settles.
   */
  function later(r, encode) {
    if (!isThenable(r)) return encode(r);
    const id = native.newPending();
    Promise.resolve(r).then(
      (v) => {
        let out;
        try {
          out = encode(v);
        } catch (e) {
          native.settle(id, false, e);
          return;
        }
        native.settle(id, true, out);
      },
      (e) => native.settle(id, false, e),
    );
    return { pending: id };
  }

  const encResult = (v) => enc(v, 'returned value');

  /** The callback of an async call: JSON text now, or `{pending: id}` for a Promise. */
  function asyncCallback(fn, stack) {
    return (text) => later(runWith(stack, fn, parse(text)), encResult);
  }

  /**
   * The managed path of an async call. It runs on a fork of the caller's stack (the core
   * pushes the call's scope there while it runs, and the function runs on it), so concurrent
   * calls do not interleave on the caller's stack.
   */
  function startAsync(kind, name, input, fn, options, keys) {
    const stack = call(native.fork, currentBase());
    const id = call(native.callAsync, stack, kind, name, input, asyncCallback(fn, stack), optsJson(options, keys, 'options'), scopeArg(options, 'parent', 'options.parent'));
    return jsonTask(id);
  }

  /**
   * A managed tool call whose callback may return a Promise. Not an `async function`: the
   * common paths settle with one Promise instead of three; every error is still a rejection.
   * The function runs on a fork of the caller's stack (what it opens is parented under the
   * call, and concurrent calls do not interleave on the caller's stack); with nothing
   * registered, a lazy one (`LazyFork`), made only if the function uses Baton.
   */
  function tool(name, args, fn, options) {
    try {
      notInSubscriber('tool');
      checkFn(fn);
      // An async call only reads the caller's stack: a caller's LazyFork stays unmaterialized.
      const s = store();
      const stack = baseOf(s);
      if (poisoned !== null) throw new BatonError('internal', poisoned);
      if (!observed && bareShape(name, options)) {
        const id = unobservedAt(stack);
        if (id >= 0) return runWith(lazyFork(s, stack, id), bareAsync, own(args, 'args'), fn);
        observed = true;
      }
      const text = enc(args, 'args');
      const input = encoded.exact ? args : parse(text);
      const how = enterCall(native.enterTool, TOOL_KEYS, stack, name, text, options, true);
      if (how === 1) {
        observed = false;
        return runWith(lazyFork(s, stack, unobservedAt(stack)), bareAsync, input, fn);
      }
      if (how !== 0) {
        // Entered on a fork the module holds; the store makes its object only if `fn` uses Baton.
        const lazy = lazyFork(s, stack, native.enteredPosition(), how);
        return runWith(lazy, runEntered, lazy, input, fn);
      }
      return startAsync('tool', name, text, fn, options, TOOL_KEYS);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  async function bareAsync(input, fn) {
    return own(await fn(input), 'returned value');
  }

  /**
   * Runs an entered async call's function and ends the call (`exitTool`) when it settles.
   * `lazy` is the function's store; its `call` is the call's id until the call ends.
   */
  function runEntered(lazy, input, fn) {
    let r;
    try {
      r = fn(input);
    } catch (e) {
      exitTool(endEntered(lazy), undefined, e);
      return Promise.reject(e);
    }
    if (isThenable(r)) {
      return Promise.resolve(r).then((v) => exitEntered(lazy, v), (e) => {
        exitTool(endEntered(lazy), undefined, e);
        throw e;
      });
    }
    try {
      return Promise.resolve(exitEntered(lazy, r));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The id of an entered async call, taken to end it: the store makes forks of its pin after. */
  function endEntered(lazy) {
    const id = lazy.call;
    lazy.call = 0;
    return id;
  }

  /** Ends an entered call with its function's result (a value that is not JSON fails it). */
  function exitEntered(lazy, r) {
    let out;
    try {
      out = encResult(r);
    } catch (e) {
      exitTool(endEntered(lazy), undefined, e);
      throw e;
    }
    const exact = encoded.exact;
    exitTool(endEntered(lazy), out);
    return exact ? r : parse(out);
  }

  const LLM_KEYS = ['modelName', 'metadata', 'attributes', 'codec', 'responseCodec', 'chunkMarks'];

  /**
   * The request an entered LLM call's function gets: the one the core checked when the check
   * changed it, else the caller's own when it is exactly its JSON form, else its JSON copy —
   * what the managed path would hand on.
   */
  function llmInput(request, text, exact) {
    const checked = native.takeCheckedRequest();
    if (checked !== undefined) return parse(checked);
    return exact ? request : parse(text);
  }

  function llmSync(name, request, fn, options) {
    notInSubscriber('llmSync');
    checkFn(fn);
    const stack = current();
    const text = enc(request, 'request');
    const exact = encoded.exact;
    // Entered (only subscribers see the call): the function runs here, as in `toolSync`.
    const id = enterCall(native.enterLlm, LLM_KEYS, stack, name, text, options, false);
    if (id !== 0) return runEnteredSync(id, llmInput(request, text, exact), fn, 'llm');
    const out = call(native.llm, stack, name, text, syncCallback(fn, stack, 'llm'), optsJson(options, LLM_KEYS, 'options'), scopeArg(options, 'parent', 'options.parent'));
    return parse(out);
  }

  /**
   * A managed LLM call whose callback may return a Promise. Entered (only subscribers see it),
   * the function runs on the call's fork as an entered `tool`'s does; otherwise the core's
   * managed pipeline runs it. Not an `async function`, as `tool`.
   */
  function llm(name, request, fn, options) {
    try {
      notInSubscriber('llm');
      checkFn(fn);
      const s = store();
      const stack = baseOf(s);
      const text = enc(request, 'request');
      const exact = encoded.exact;
      const id = enterCall(native.enterLlm, LLM_KEYS, stack, name, text, options, true);
      if (id !== 0) {
        const input = llmInput(request, text, exact);
        const lazy = lazyFork(s, stack, native.enteredPosition(), id);
        return runWith(lazy, runEntered, lazy, input, fn);
      }
      return startAsync('llm', name, text, fn, options, LLM_KEYS);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  // ----- streams -----

  const chunkStep = (r) => (r.done ? undefined : enc(r.value, 'chunk'));

  /**
   * The iterator the native side pulls: `next()` gives a chunk's JSON text, undefined at the
   * end, or `{pending}` while an async iterator's step is a Promise.
   */
  function iterOf(x, preferAsync, stack) {
    const it = rawIterator(x, preferAsync);
    return {
      // With `stack` (an async managed stream's fork), the source's steps run with it current,
      // as its callback did: a generator's body runs at its first step, not at the call.
      next() {
        return later(stack === undefined ? it.next() : runWith(stack, stepOf, it), chunkStep);
      },
      return() {
        if (typeof it.return === 'function') {
          const r = it.return();
          if (isThenable(r)) r.then(undefined, () => {});
        }
      },
    };
  }

  const stepOf = (it) => it.next();

  /** The inner chunks a stream intercept wraps: `for await` (any stream) or `for` (sync ones). */
  class ChunkSource {
    constructor(h) {
      this[EXT] = h;
    }
    *[Symbol.iterator]() {
      for (;;) {
        const v = call(() => this[EXT].next());
        if (v === undefined || v === null) return;
        yield parse(v);
      }
    }
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const v = await runTask(call(() => this[EXT].nextAsync()));
        if (v === undefined) return;
        yield parse(v);
      }
    }
  }

  /**
   * A managed LLM stream read synchronously. Entered (`entered` set: only subscribers see the
   * call), the facade pulls the source itself under the stream's fork and reports each chunk
   * to the module; otherwise the core's stream machinery pulls it.
   */
  class LlmStreamSync {
    constructor(h, entered, source) {
      this[EXT] = h;
      this._done = false;
      this._entered = entered;
      this._src = source;
      this._stack = entered === undefined ? undefined : call(() => entered.stack());
    }
    next() {
      if (this._done) return DONE;
      if (this._entered !== undefined) {
        let r;
        try {
          r = runWith(this._stack, step, this._src);
          notPromise(r, 'the source of llmStreamSync gave a Promise; use llmStream');
        } catch (e) {
          throw failStream(this, e);
        }
        return enteredChunk(this, r);
      }
      let v;
      try {
        v = call(() => this[EXT].next());
      } catch (e) {
        this._done = true;
        throw e;
      }
      if (v === undefined || v === null) {
        this._done = true;
        return DONE;
      }
      return { value: parse(v), done: false };
    }
    return() {
      this.close();
      return DONE;
    }
    close() {
      closeStream(this);
    }
    [Symbol.iterator]() {
      return this;
    }
  }

  /** A managed LLM stream: an async iterator of chunks, pulled lazily (entered as above). */
  class LlmStream {
    constructor(h, entered, source) {
      this[EXT] = h;
      this._done = false;
      this._entered = entered;
      this._src = source;
      this._stack = entered === undefined ? undefined : call(() => entered.stack());
    }
    next() {
      return this._entered === undefined ? this._nextManaged() : this._nextEntered();
    }
    async _nextManaged() {
      if (this._done) return DONE;
      let v;
      try {
        v = await runTask(call(() => this[EXT].nextAsync()));
      } catch (e) {
        this._done = true;
        throw e;
      }
      if (v === undefined) {
        this._done = true;
        return DONE;
      }
      return { value: parse(v), done: false };
    }
    async _nextEntered() {
      if (this._done) return DONE;
      let r;
      try {
        r = runWith(this._stack, step, this._src);
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
      closeStream(this);
    }
    [Symbol.asyncIterator]() {
      return this;
    }
  }

  function closeStream(s) {
    if (s._done) return;
    s._done = true;
    if (s._entered === undefined) {
      call(() => s[EXT].close());
      return;
    }
    delivered(call(() => s._entered.finish(false, undefined)));
    closeSource(s._src);
  }

  /** After a module call that may have batched events: deliver soon, or now past the mark. */
  function delivered(batched) {
    scheduleDrain();
    relieve(batched);
  }

  /** Ends an entered stream with the value its source threw; returns that value to rethrow. */
  function failStream(s, e) {
    s._done = true;
    delivered(call(() => s._entered.finish(false, e)));
    return e;
  }

  /** One step of an entered stream's source: the chunk, reported to the module, or the end. */
  function enteredChunk(s, r) {
    if (r === null || typeof r !== 'object') {
      throw failStream(s, new TypeError(`the stream's iterator returned ${r === null ? 'null' : typeof r}, not an iterator result`));
    }
    if (r.done) {
      s._done = true;
      delivered(call(() => s._entered.finish(true, undefined)));
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
    if (poisoned !== null) throw new BatonError('internal', poisoned);
    counted(s._entered.chunk, s._entered, text);
    return { value: exact ? r.value : parse(text), done: false };
  }

  /** The LLM stream entered on a fork of `stack`, or undefined: take the managed path. */
  function enterStream(stack, name, text, options) {
    return call(native.enterLlmStream, stack, name, text, optsJson(options, LLM_KEYS, 'options'), scopeArg(options, 'parent', 'options.parent'));
  }

  function llmStreamSync(name, request, fn, options) {
    notInSubscriber('llmStreamSync');
    checkFn(fn);
    const text = enc(request, 'request');
    const entered = enterStream(currentBase(), name, text, options);
    if (entered !== undefined) {
      const s = new LlmStreamSync(undefined, entered, undefined);
      try {
        const r = runWith(s._stack, fn, parse(entered.takeRequest()));
        notPromise(r, 'the callback of llmStreamSync returned a Promise; use llmStream');
        s._src = rawIterator(r, false);
      } catch (e) {
        throw failStream(s, e);
      }
      return s;
    }
    // Pulled synchronously, the stream's scope is pushed onto the caller's own stack.
    const stack = current();
    const cb = (t) => {
      const r = runWith(stack, fn, parse(t));
      notPromise(r, 'the callback of llmStreamSync returned a Promise; use llmStream');
      return iterOf(r, false);
    };
    return new LlmStreamSync(call(native.llmStream, stack, name, text, cb, optsJson(options, LLM_KEYS, 'options'), scopeArg(options, 'parent', 'options.parent')));
  }

  async function llmStream(name, request, fn, options) {
    notInSubscriber('llmStream');
    checkFn(fn);
    const base = currentBase();
    const text = enc(request, 'request');
    const entered = enterStream(base, name, text, options);
    if (entered !== undefined) {
      const s = new LlmStream(undefined, entered, undefined);
      try {
        let r = runWith(s._stack, fn, parse(entered.takeRequest()));
        if (isThenable(r)) r = await r;
        s._src = rawIterator(r, true);
      } catch (e) {
        throw failStream(s, e);
      }
      return s;
    }
    // The managed stream runs on a fork of the caller's stack (its scope is pushed there while
    // it is pulled), so concurrent streams do not interleave on the caller's stack.
    const stack = call(native.fork, base);
    const cb = (t) => {
      const r = runWith(stack, fn, parse(t));
      if (!isThenable(r)) return iterOf(r, true, stack);
      const id = native.newPending();
      Promise.resolve(r).then(
        (x) => {
          let it;
          try {
            it = iterOf(x, true, stack);
          } catch (e) {
            native.settle(id, false, e);
            return;
          }
          native.settleIter(id, it);
        },
        (e) => native.settle(id, false, e),
      );
      return { pending: id };
    };
    const id = call(native.llmStreamAsync, stack, name, text, cb, optsJson(options, LLM_KEYS, 'options'), scopeArg(options, 'parent', 'options.parent'));
    return new LlmStream(await runTask(id));
  }

  /** A tool or LLM call started with `toolStart` / `llmStart`. */
  class CallHandle {
    constructor(h, kind) {
      this[EXT] = h;
      this.kind = kind;
    }
    get uuid() {
      return call(() => this[EXT].uuid());
    }
    end(options) {
      const key = this.kind === 'tool' ? 'result' : 'response';
      const opts = options === undefined || options === null ? undefined : { output: options[key], metadata: options.metadata };
      const error = options && options.error !== undefined ? options.error : undefined;
      call(() => this[EXT].end(optsJson(opts, ['output', 'metadata'], 'options'), error));
    }
  }

  function toolStart(name, args, options) {
    return new CallHandle(call(native.toolStart, current(), name, enc(args, 'args'), optsJson(options, TOOL_KEYS, 'options'), scopeArg(options, 'parent', 'options.parent')), 'tool');
  }
  function llmStart(name, request, options) {
    return new CallHandle(call(native.llmStart, current(), name, enc(request, 'request'), optsJson(options, LLM_KEYS, 'options'), scopeArg(options, 'parent', 'options.parent')), 'llm');
  }
  const toolEnd = (handle, options) => ext(handle, 'handle', CallHandle) && handle.end(options);
  const llmEnd = (handle, options) => ext(handle, 'handle', CallHandle) && handle.end(options);

  function helper(kind, name, input, what) {
    notInSubscriber(kind);
    return parse(call(native.standalone, current(), kind, name, enc(input, what)));
  }
  const toolConditionalExecutionSync = (name, args) => { helper('toolConditionalExecution', name, args, 'args'); };
  const llmConditionalExecutionSync = (name, request) => { helper('llmConditionalExecution', name, request, 'request'); };
  const toolRequestInterceptsSync = (name, args) => helper('toolRequestIntercepts', name, args, 'args');
  const llmRequestInterceptsSync = (name, request) => helper('llmRequestIntercepts', name, request, 'request');
  async function helperAsync(kind, name, input, what) {
    notInSubscriber(kind);
    return jsonTask(call(native.standaloneAsync, currentBase(), kind, name, enc(input, what)));
  }
  const toolConditionalExecution = async (name, args) => { await helperAsync('toolConditionalExecution', name, args, 'args'); };
  const llmConditionalExecution = async (name, request) => { await helperAsync('llmConditionalExecution', name, request, 'request'); };
  const toolRequestIntercepts = (name, args) => helperAsync('toolRequestIntercepts', name, args, 'args');
  const llmRequestIntercepts = (name, request) => helperAsync('llmRequestIntercepts', name, request, 'request');

  /** Given to execution intercepts. */
  class CallContext {
    constructor(c) {
      this[EXT] = c;
      this._info = undefined;
    }
    get info() {
      if (this._info === undefined) this._info = parse(this[EXT].info());
      return this._info;
    }
    /** Queues a mark, emitted right after the call's end event and parented under the call. */
    queueMark(name, options) {
      const data = options && options.data !== undefined ? enc(options.data, 'options.data') : undefined;
      const metadata = options && options.metadata !== undefined ? enc(options.metadata, 'options.metadata') : undefined;
      call(() => this[EXT].queueMark(name, data, metadata));
    }
  }

  // ----- middleware and subscribers -----

  function register(kind, name, fn, options) {
    if (typeof fn !== 'function') throw makeError('invalid_argument', 'middleware: expected a function');
    if (!MIDDLEWARE_KINDS.includes(kind)) throw makeError('invalid_argument', `kind: unknown middleware kind '${kind}'`);
    const priority = options && options.priority !== undefined ? options.priority : 0;
    if (!Number.isInteger(priority)) throw makeError('invalid_argument', 'options.priority: expected an integer');
    const scope = scopeArg(options, 'scope', 'options.scope');
    if (kind === 'subscriber') {
      const json = subscriberFormat(options);
      const id = nextSubscriberId++;
      subscribers.set(id, { fn, json });
      try {
        call(native.subscribe, name, id, priority, scope);
      } catch (e) {
        subscribers.delete(id);
        throw e;
      }
      return;
    }
    if (kind === 'llm_stream_execution_intercept') {
      const adaptedStream = (src, c, isAsync) => {
        const r = fn(new ChunkSource(src), new CallContext(c));
        if (isThenable(r)) {
          r.then(undefined, () => {});
          throw makeError('callback_failed', 'a stream intercept must return an iterable or async iterable, not a Promise');
        }
        return iterOf(r, isAsync);
      };
      call(native.registerStreamIntercept, name, adaptedStream, priority, scope);
      return;
    }
    if (kind === 'tool_execution_intercept' || kind === 'llm_execution_intercept') {
      const sync = !!(options && options.sync === true);
      let adaptedIntercept;
      if (sync) {
        adaptedIntercept = (text, token, c) => {
          const input = parse(text);
          const next = (v) => parse(call(native.callNext, token, enc(v === undefined ? input : v, 'input')));
          const r = fn(input, next, new CallContext(c));
          notPromise(r, 'a sync execution intercept returned a Promise; register it without `sync: true`');
          return encResult(r);
        };
      } else {
        adaptedIntercept = (text, token, c) => {
          const input = parse(text);
          const next = async (v) => parse(await runTask(call(native.nextAsync, token, enc(v === undefined ? input : v, 'input'))));
          return later(fn(input, next, new CallContext(c)), encResult);
        };
      }
      call(native.registerExecutionIntercept, kind, name, adaptedIntercept, priority, scope, sync);
      return;
    }
    let adapted;
    switch (kind) {
      case 'tool_conditional_execution':
      case 'llm_conditional_execution':
        adapted = (text, info) => later(fn(parse(text), parse(info)), decision);
        break;
      case 'tool_request_intercept':
      case 'llm_request_intercept':
        adapted = (text, info) => {
          const v = parse(text);
          return later(fn(v, parse(info)), (r) => enc(r === undefined ? v : r, 'returned value'));
        };
        break;
      case 'tool_sanitize_request':
      case 'tool_sanitize_response':
      case 'llm_sanitize_request':
      case 'llm_sanitize_response':
        adapted = (text, info) => {
          const r = fn(parse(text), parse(info));
          return r === undefined ? undefined : enc(r, 'returned value');
        };
        break;
      case 'mark_sanitize':
      case 'scope_sanitize_start':
      case 'scope_sanitize_end':
        adapted = (text, info) => {
          const r = fn(parse(text), parse(info));
          if (r === undefined || r === null) return undefined;
          return enc({ data: r.data === undefined ? null : r.data, metadata: r.metadata }, 'returned fields');
        };
        break;
      case 'event_metadata_injector':
        adapted = (info) => {
          const r = fn(parse(info));
          return r === undefined || r === null ? undefined : enc(r, 'returned metadata');
        };
        break;
      default:
        throw makeError('invalid_argument', `${kind}: not supported by the wasm binding yet`);
    }
    call(native.registerMiddleware, kind, name, adapted, priority, scope, !!(options && options.breakChain));
  }

  /**
   * A guardrail's decision as `{allow, reason}` JSON: nothing or `true` allows, `false`
   * rejects, `{allow: true}` allows, any other object rejects (with its `reason`).
   */
  function decision(d) {
    if (d === undefined || d === null || d === true) return '{"allow":true}';
    if (d === false) return '{"allow":false}';
    if (typeof d !== 'object') throw makeError('callback_failed', 'a guardrail must return a boolean, {allow, reason?} or nothing');
    if (d.allow === true) return '{"allow":true}';
    return JSON.stringify({ allow: false, reason: typeof d.reason === 'string' ? d.reason : undefined });
  }

  function deregister(kind, name, options) {
    observed = false;
    return call(native.deregister, kind, name, scopeArg(options, 'scope', 'options.scope'));
  }

  /** `format: 'json'` hands a subscriber each event's JSON text instead of an object. */
  function subscriberFormat(options) {
    const f = options === undefined || options === null ? undefined : options.format;
    if (f === undefined || f === 'object') return false;
    if (f === 'json') return true;
    throw makeError('invalid_argument', `options.format: expected 'object' or 'json', got ${JSON.stringify(f) ?? String(f)}`);
  }

  function subscribe(name, fn, options) {
    register('subscriber', name, fn, options);
  }

  // ----- lifecycle -----

  function timeoutOf(options) {
    if (options === undefined || options === null || options.timeout === undefined) return 30000;
    return options.timeout;
  }

  async function flush(options) {
    notInSubscriber('flush');
    const ok = call(native.flush, timeoutOf(options));
    runDrain();
    return ok;
  }

  async function shutdown(options) {
    notInSubscriber('shutdown');
    observed = false;
    const ok = call(native.shutdown, timeoutOf(options));
    runDrain();
    return ok;
  }

  function diagnostics() {
    const d = parse(call(native.diagnostics));
    d.subscriberFailures += subscriberFailures;
    return d;
  }

  /** Sets up the global runtime before first use (`already_exists` afterwards). */
  function configure(options) {
    const o = options === undefined || options === null ? {} : options;
    if (typeof o !== 'object') throw makeError('invalid_argument', 'options: expected an object');
    const cap = o.queueCapacity;
    if (cap !== undefined && !(Number.isInteger(cap) && cap >= 1)) {
      throw makeError('invalid_argument', 'options.queueCapacity: expected a positive integer');
    }
    if (o.overflow !== undefined && typeof o.overflow !== 'string') throw makeError('invalid_argument', 'options.overflow: expected a string');
    call(native.configure, cap, o.overflow);
  }

  function isShutdown() {
    return call(native.isShutdown);
  }

  /**
   * Registers an export sink for the observability component: a document names it in
   * `atof.sinks` (`{type: 'callback', sink: name}`) and/or `atif.sink`. `atof(line)` receives
   * each ATOF event as one JSON line, `atif(document, {sessionId, fileName})` each finished
   * ATIF trajectory. This is how a browser (no file system) gets the exports.
   */
  function registerSink(name, sink) {
    if (typeof name !== 'string') throw makeError('invalid_argument', 'name: expected a string');
    if (sink === null || typeof sink !== 'object') throw makeError('invalid_argument', 'sink: expected an object with atof and/or atif functions');
    for (const k of ['atof', 'atif']) {
      if (sink[k] !== undefined && typeof sink[k] !== 'function') throw makeError('invalid_argument', `sink.${k}: expected a function`);
    }
    const atof = sink.atof && ((line) => { sink.atof(line); });
    const atif = sink.atif && ((doc, info) => { sink.atif(parse(doc), parse(info)); });
    call(native.registerExportSink, name, atof, atif);
  }

  /** Plugin configuration: the `plugins.toml` document as JSON (see registerSink for exports). */
  const plugins = Object.freeze({
    validate: (config) => parse(call(native.pluginValidate, enc(config, 'config'))),
    initialize: (config) => parse(call(native.pluginInitialize, enc(config, 'config'))),
    clear: () => {
      observed = false;
      call(native.pluginClear);
    },
    registerSink: registerSink,
    deregisterSink: (name) => call(native.deregisterExportSink, String(name)),
  });

  /** Provider codecs (normalized shapes as in DESIGN.md §2.8); `auto` detects, `null` when nothing matches. */
  const codecs = Object.freeze({
    decodeRequest: (codec, request) => parse(call(native.codec, 'decodeRequest', codec, enc(request, 'request'), undefined)),
    encodeRequest: (codec, normalized, original) => parse(call(native.codec, 'encodeRequest', codec, enc(normalized, 'normalized'), enc(original, 'original'))),
    decodeResponse: (codec, response) => parse(call(native.codec, 'decodeResponse', codec, enc(response, 'response'), undefined)),
    aggregateStream: (codec, chunks) => parse(call(native.codec, 'aggregateStream', codec, enc(chunks, 'chunks'), undefined)),
  });

  /** Test hook: makes the Rust side panic (the result is an `internal` error). */
  function _debugPanic(message) {
    call(native.debugPanic, String(message));
  }

  return {
    BatonError,
    ERROR_KINDS,
    MIDDLEWARE_KINDS,
    Stack,
    Scope,
    CallContext,
    CallHandle,
    LlmStream,
    LlmStreamSync,
    ChunkSource,
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
    configure,
    codecs,
    plugins,
    _debugPanic,
  };
}
