// Type definitions for Baton for WebAssembly (the npm package `baton-wasm`: `baton-wasm` in
// Node, `baton-wasm/web` in browsers and edge runtimes). The same API as the Node binding
// (node/index.d.ts), plus `init()` and the export sinks of `plugins` (no file system on wasm32).

/** A JSON value as Baton returns it. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/**
 * A value Baton accepts as JSON: `undefined` object fields are dropped, and objects with a
 * `toJSON()` (e.g. `Date`) are converted through it. Functions, symbols, BigInt, cycles and
 * other class instances are rejected at run time with an `invalid_argument` error.
 */
export type JsonInput =
  | null
  | boolean
  | number
  | string
  | readonly JsonInput[]
  | { readonly [key: string]: JsonInput | undefined }
  | { toJSON(): unknown };

export type MaybePromise<T> = T | Promise<T>;

export type ErrorKind =
  | 'invalid_argument'
  | 'invalid_state'
  | 'not_found'
  | 'already_exists'
  | 'guardrail_rejected'
  | 'callback_failed'
  | 'upstream'
  | 'timeout'
  | 'already_shutdown'
  | 'internal';

export const ERROR_KINDS: readonly ErrorKind[];

/**
 * A Baton error; `code` is its kind. `invalid_argument` errors are real `TypeError`s that
 * also pass `instanceof BatonError`. A callback's own thrown value is rethrown unchanged.
 */
export class BatonError extends Error {
  constructor(code: ErrorKind, message: string, detail?: Json);
  readonly code: ErrorKind;
  /** Same as `code`. */
  readonly kind: ErrorKind;
  /** Structured detail, e.g. `{guardrail, reason}` for `guardrail_rejected`. */
  readonly detail?: Json;
}

export type MiddlewareKind =
  | 'tool_conditional_execution'
  | 'tool_request_intercept'
  | 'tool_execution_intercept'
  | 'tool_sanitize_request'
  | 'tool_sanitize_response'
  | 'llm_conditional_execution'
  | 'llm_request_intercept'
  | 'llm_execution_intercept'
  | 'llm_stream_execution_intercept'
  | 'llm_sanitize_request'
  | 'llm_sanitize_response'
  | 'mark_sanitize'
  | 'scope_sanitize_start'
  | 'scope_sanitize_end'
  | 'event_metadata_injector'
  | 'subscriber';

export const MIDDLEWARE_KINDS: readonly MiddlewareKind[];

/** An ATOF 0.1 event, as subscribers receive it. */
export interface AtofEvent {
  kind: 'scope' | 'mark';
  atof_version: '0.1';
  uuid: string;
  parent_uuid: string | null;
  timestamp: string;
  name: string;
  scope_category?: 'start' | 'end';
  category?: string;
  attributes?: string[];
  category_profile?: JsonObject | null;
  data: Json;
  data_schema: { name: string; version: string } | null;
  metadata: JsonObject;
}

/** What middleware knows about a managed call. */
export interface CallInfo {
  kind: 'tool' | 'llm';
  name: string;
  toolCallId: string | null;
  modelName: string | null;
  /** The scope the call runs under (null at top level). */
  parentUuid: string | null;
  /** The call's own scope (null before its start event: guardrails, request intercepts). */
  uuid: string | null;
}

/** What event middleware knows about an event. */
export interface EventInfo {
  kind: 'scope' | 'mark';
  scopeCategory: 'start' | 'end' | null;
  uuid: string;
  parentUuid: string | null;
  name: string;
  category: string | null;
}

/** The parts of an event an event sanitizer may rewrite. */
export interface EventFields {
  data: Json;
  metadata: JsonObject;
}

/** `true`/nothing allows, `false` rejects, `{allow: false, reason}` rejects with a reason. */
export type GuardrailDecision = boolean | void | null | undefined | { allow: boolean; reason?: string };

/**
 * A stack of open scopes (one per request or task). In Node, AsyncLocalStorage keeps it current
 * across awaits; in browsers and edge runtimes only for the synchronous part of `run`/`withScope`.
 */
export class Stack {
  private constructor();
  /** Runs `fn` with this stack current, also across its awaits. */
  run<T>(fn: () => T): T;
  /** A new empty stack whose first scope is parented under this stack's current scope. */
  fork(): Stack;
  propagationContext(): PropagationContext;
  traceparent(): string;
  readonly depth: number;
  readonly currentScope: Scope | null;
}

/** A handle to an open (or ended) scope. */
export class Scope {
  private constructor();
  readonly uuid: string;
  readonly name: string;
  readonly category: string;
  readonly parentUuid: string | null;
  readonly rootUuid: string;
  readonly ended: boolean;
}

/** A tool or LLM call started with `toolStart` / `llmStart`. */
export class CallHandle {
  private constructor();
  readonly kind: 'tool' | 'llm';
  readonly uuid: string;
  end(options?: CallEndOptions): void;
}

/** Given to execution and stream intercepts. */
export class CallContext {
  private constructor();
  readonly info: CallInfo;
  /** Queues a mark, emitted right after the call's end event and parented under the call. */
  queueMark(name: string, options?: { data?: JsonInput; metadata?: { readonly [key: string]: JsonInput | undefined } }): void;
}

/** The inner chunks a stream intercept wraps: `for await` (async streams) or `for` (sync ones). */
export class ChunkSource implements AsyncIterable<Json>, Iterable<Json> {
  private constructor();
  [Symbol.asyncIterator](): AsyncIterator<Json>;
  [Symbol.iterator](): Iterator<Json>;
}

/** A managed LLM stream, pulled lazily; leaving early (break, `close()`) ends it as cancelled. */
export class LlmStream implements AsyncIterableIterator<Json> {
  private constructor();
  next(): Promise<IteratorResult<Json, undefined>>;
  return(): Promise<IteratorResult<Json, undefined>>;
  close(): void;
  [Symbol.asyncIterator](): LlmStream;
}

/** A managed LLM stream read synchronously (`llmStreamSync`). */
export class LlmStreamSync implements IterableIterator<Json> {
  private constructor();
  next(): IteratorResult<Json, undefined>;
  return(): IteratorResult<Json, undefined>;
  close(): void;
  [Symbol.iterator](): LlmStreamSync;
}

export interface PropagationContext {
  version: 1;
  root_uuid?: string;
  parent_uuid: string | null;
}

type Metadata = { readonly [key: string]: JsonInput | undefined };

export interface ScopeOptions {
  /** Default `function`. Any string is kept (agent, llm, tool, retriever, custom, ...). */
  category?: string;
  input?: JsonInput;
  metadata?: Metadata;
  attributes?: readonly string[];
  categoryProfile?: JsonInput;
  dataSchema?: { name: string; version: string } | null;
  /** Explicit parent (default: the current scope). */
  parent?: Scope | null;
}

export interface PopOptions {
  output?: JsonInput;
  metadata?: Metadata;
  /** Ends the scope with ERROR status: a thrown value or a message. */
  error?: unknown;
}

export interface MarkOptions {
  data?: JsonInput;
  metadata?: Metadata;
  parent?: Scope | null;
  category?: string;
  categoryProfile?: JsonInput;
  dataSchema?: { name: string; version: string } | null;
}

export interface ToolOptions {
  toolCallId?: string;
  metadata?: Metadata;
  attributes?: readonly string[];
  parent?: Scope | null;
}

export interface LlmOptions {
  modelName?: string;
  metadata?: Metadata;
  attributes?: readonly string[];
  parent?: Scope | null;
  /** Streams: emit an `llm.chunk` mark per chunk (default true). */
  chunkMarks?: boolean;
  /** Provider codec of `request.content` (or `auto`): events then carry `annotated_request`. */
  codec?: CodecName;
  /** Codec of the response when it differs from `codec` (events carry `annotated_response`). */
  responseCodec?: CodecName;
}

export interface CallEndOptions {
  /** The tool's result. */
  result?: JsonInput;
  /** The LLM's response. */
  response?: JsonInput;
  metadata?: Metadata;
  /** Ends the call with ERROR status: a thrown value or a message. */
  error?: unknown;
}

/** An LLM request: `{headers, content}` (credential headers never reach events). */
export interface LlmRequest {
  headers?: { readonly [name: string]: string };
  content: JsonInput;
}

export interface RegisterOptions {
  /** Lower runs first (for execution intercepts: outermost). Default 0. */
  priority?: number;
  /** Scope-local: active under this scope until it ends. */
  scope?: Scope | null;
  /** Request intercepts: later intercepts do not run. */
  breakChain?: boolean;
}

export type ChunkProducer = Iterable<JsonInput> | AsyncIterable<JsonInput>;

export interface MiddlewareFunctions {
  tool_conditional_execution: (args: Json, info: CallInfo) => MaybePromise<GuardrailDecision>;
  llm_conditional_execution: (request: Json, info: CallInfo) => MaybePromise<GuardrailDecision>;
  /** Returns the rewritten input (`undefined` keeps it). */
  tool_request_intercept: (args: Json, info: CallInfo) => MaybePromise<JsonInput | undefined>;
  llm_request_intercept: (request: Json, info: CallInfo) => MaybePromise<JsonInput | undefined>;
  /** May call `next` zero, one or several times; `next()` without an argument passes the input on. */
  tool_execution_intercept: (args: Json, next: (args?: JsonInput) => Promise<Json>, ctx: CallContext) => MaybePromise<JsonInput>;
  llm_execution_intercept: (request: Json, next: (request?: JsonInput) => Promise<Json>, ctx: CallContext) => MaybePromise<JsonInput>;
  llm_stream_execution_intercept: (chunks: ChunkSource, ctx: CallContext) => ChunkProducer;
  /** Returns what the event carries; `undefined` omits the payload. Synchronous. */
  tool_sanitize_request: (args: Json, info: CallInfo) => JsonInput | undefined;
  tool_sanitize_response: (result: Json, info: CallInfo) => JsonInput | undefined;
  llm_sanitize_request: (request: Json, info: CallInfo) => JsonInput | undefined;
  llm_sanitize_response: (response: Json, info: CallInfo) => JsonInput | undefined;
  mark_sanitize: (fields: EventFields, info: EventInfo) => EventFields | null | undefined;
  scope_sanitize_start: (fields: EventFields, info: EventInfo) => EventFields | null | undefined;
  scope_sanitize_end: (fields: EventFields, info: EventInfo) => EventFields | null | undefined;
  /** Returns flat dotted keys to add to the event metadata (never overwriting). */
  event_metadata_injector: (info: EventInfo) => Metadata | null | undefined;
  /** Runs on the JS thread, off the caller's path, in emission order. */
  subscriber: (event: AtofEvent) => void | Promise<void>;
}

/** A sync execution intercept (`{sync: true}`): `next` returns the value; works in `*Sync` calls. */
export type SyncExecutionIntercept = (input: Json, next: (input?: JsonInput) => Json, ctx: CallContext) => JsonInput;

export interface Diagnostics {
  deliveredEvents: number;
  droppedEvents: number;
  subscriberFailures: number;
  middlewareFailures: number;
  queued: number;
  /**
   * wasm only: the size of the module's linear memory in bytes. It grows in 64 KiB pages
   * when the module needs more and never shrinks (WebAssembly cannot give memory back).
   */
  memoryBytes: number;
}

/** Sets up the global runtime before first use (`already_exists` afterwards). */
export function configure(options: { queueCapacity?: number; overflow?: 'block' | 'drop' }): void;

/**
 * Loads the module. Required (and awaited) before anything else in browsers and edge runtimes
 * (`baton-wasm/web`); a no-op in Node, where the module loads synchronously.
 * `input`: a URL, `Response`, `BufferSource` or `WebAssembly.Module` of `baton_wasm_bg.wasm`.
 */
export function init(input?: unknown): Promise<void>;

export function push(name: string, options?: ScopeOptions): Scope;
export function pop(scope: Scope, options?: PopOptions): void;
/**
 * Runs `fn` in a new scope on a fork of the current stack, so concurrent tasks each get their
 * own tree. The scope ends with `fn`'s outcome; a Promise is awaited first.
 */
export function withScope<T>(name: string, fn: (scope: Scope) => T, options?: ScopeOptions): T;
export function mark(name: string, options?: MarkOptions): void;
export function metric(
  name: string,
  measurements: number | readonly (number | { value: number; attributes?: Metadata })[],
  options?: { unit?: string },
): void;

export function currentStack(): Stack;
export function currentScope(): Scope | null;
export function newStack(): Stack;
export function fork(): Stack;
export function stackFromPropagation(context: PropagationContext | JsonInput): Stack;
export function runWithStack<T>(stack: Stack, fn: () => T): T;
export function propagationContext(): PropagationContext;
export function traceparent(): string;

export function tool(name: string, args: JsonInput, fn: (args: Json) => MaybePromise<JsonInput>, options?: ToolOptions): Promise<Json>;
export function toolSync(name: string, args: JsonInput, fn: (args: Json) => JsonInput, options?: ToolOptions): Json;
export function llm(name: string, request: LlmRequest, fn: (request: Json) => MaybePromise<JsonInput>, options?: LlmOptions): Promise<Json>;
export function llmSync(name: string, request: LlmRequest, fn: (request: Json) => JsonInput, options?: LlmOptions): Json;
export function llmStream(
  name: string,
  request: LlmRequest,
  fn: (request: Json) => MaybePromise<ChunkProducer>,
  options?: LlmOptions,
): Promise<LlmStream>;
export function llmStreamSync(name: string, request: LlmRequest, fn: (request: Json) => Iterable<JsonInput>, options?: LlmOptions): LlmStreamSync;

export function toolStart(name: string, args: JsonInput, options?: ToolOptions): CallHandle;
export function toolEnd(handle: CallHandle, options?: CallEndOptions): void;
export function llmStart(name: string, request: LlmRequest, options?: LlmOptions): CallHandle;
export function llmEnd(handle: CallHandle, options?: CallEndOptions): void;

/** Runs only the guardrails; rejects with `guardrail_rejected` on a rejection. */
export function toolConditionalExecution(name: string, args: JsonInput): Promise<void>;
export function toolConditionalExecutionSync(name: string, args: JsonInput): void;
export function llmConditionalExecution(name: string, request: LlmRequest): Promise<void>;
export function llmConditionalExecutionSync(name: string, request: LlmRequest): void;
/** Runs only the request intercepts; returns the rewritten input. */
export function toolRequestIntercepts(name: string, args: JsonInput): Promise<Json>;
export function toolRequestInterceptsSync(name: string, args: JsonInput): Json;
export function llmRequestIntercepts(name: string, request: LlmRequest): Promise<Json>;
export function llmRequestInterceptsSync(name: string, request: LlmRequest): Json;

export function register(
  kind: 'tool_execution_intercept' | 'llm_execution_intercept',
  name: string,
  fn: SyncExecutionIntercept,
  options: RegisterOptions & { sync: true },
): void;
export function register(kind: 'subscriber', name: string, fn: (event: string) => void | Promise<void>, options: SubscribeOptions & { format: 'json' }): void;
export function register<K extends MiddlewareKind>(kind: K, name: string, fn: MiddlewareFunctions[K], options?: (K extends 'subscriber' ? SubscribeOptions : RegisterOptions) & { sync?: false }): void;
/** Removes a registration; `false` when nothing of that name was registered there. */
export function deregister(kind: MiddlewareKind, name: string, options?: { scope?: Scope | null }): boolean;
/** Subscribers only: `'json'` hands each event as its ATOF JSON text (no parse: for forwarding). */
export interface SubscribeOptions extends RegisterOptions {
  format?: 'object' | 'json';
}
/** Same as `register('subscriber', name, fn, options)`. */
export function subscribe(name: string, fn: MiddlewareFunctions['subscriber'], options?: SubscribeOptions & { format?: 'object' }): void;
/** With `format: 'json'`, the subscriber gets each event's JSON text. */
export function subscribe(name: string, fn: (event: string) => void | Promise<void>, options: SubscribeOptions & { format: 'json' }): void;

/** Resolves when every event emitted before it was delivered (`false` on timeout). */
export function flush(options?: { timeout?: number }): Promise<boolean>;
/** Flushes, stops delivery; later calls fail with `already_shutdown`. */
export function shutdown(options?: { timeout?: number }): Promise<boolean>;
export function diagnostics(): Diagnostics;
export function isShutdown(): boolean;

/** A diagnostic of a plugins document. */
export interface PluginDiagnostic {
  level: 'warning' | 'error';
  code: string;
  component?: string;
  field?: string;
  message: string;
}

/**
 * Where the observability component sends its exports in wasm (which has no file system).
 * Name the sink in the plugins document: `atof.sinks: [{type: 'callback', sink: NAME}]`
 * and/or `atif: {enabled: true, sink: NAME}`.
 */
export interface ExportSink {
  /** Each ATOF 0.1 event as one JSON line (no newline), in delivery order. */
  atof?: (line: string) => void;
  /**
   * Each finished ATIF trajectory (one per top-level agent scope). `fileName` is the
   * `filename_template` applied to the session id: what the file exporter would have written.
   */
  atif?: (document: JsonObject, info: { sessionId: string; fileName: string }) => void;
}

/** Plugin configuration: the `plugins.toml` document (version, components, policy) as JSON. */
export const plugins: {
  /**
   * Registers an export sink under `name` (`already_exists` if taken; at least one of
   * `atof`, `atif`). A throwing sink is isolated and counted in `diagnostics().subscriberFailures`.
   */
  registerSink(name: string, sink: ExportSink): void;
  /** Removes a sink (configurations already installed keep it); `false` when none had that name. */
  deregisterSink(name: string): boolean;
  /** Checks a document; pure: nothing is installed. */
  validate(config: JsonInput): PluginDiagnostic[];
  /** Validates, replaces the active configuration, and reports what was installed. */
  initialize(config: JsonInput): JsonObject;
  /** Removes everything the active configuration installed. */
  clear(): void;
};

export type CodecName = 'openai_chat' | 'openai_responses' | 'anthropic_messages' | 'gemini_generate_content' | 'auto';

/** Provider codecs (normalized shapes as in DESIGN.md §2.8); `auto` detects, `null` when nothing matches. */
export const codecs: {
  decodeRequest(codec: CodecName, request: JsonInput): Json;
  encodeRequest(codec: CodecName, normalized: JsonInput, original: JsonInput): Json;
  decodeResponse(codec: CodecName, response: JsonInput): Json;
  aggregateStream(codec: CodecName, chunks: readonly JsonInput[]): Json;
};

/** Test hook: makes the Rust side panic; the result is an `internal` error and a poisoned instance. */
export function _debugPanic(message: string): never;
