// ESM entry point of Baton for Node.js: the same module as the CommonJS entry (one addon, one
// runtime, one AsyncLocalStorage), re-exported with named exports.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const baton = require('./index.js');

export const {
  BatonError, ERROR_KINDS, MIDDLEWARE_KINDS, Stack, Scope, CallHandle, CallContext, ChunkSource, LlmStream, LlmStreamSync,
  configure, push, pop, withScope, mark, metric, currentStack, currentScope, newStack, fork, stackFromPropagation,
  runWithStack, propagationContext, traceparent, tool, toolSync, llm, llmSync, llmStream, llmStreamSync, toolStart,
  toolEnd, llmStart, llmEnd, toolConditionalExecution, toolConditionalExecutionSync, llmConditionalExecution,
  llmConditionalExecutionSync, toolRequestIntercepts, toolRequestInterceptsSync, llmRequestIntercepts,
  llmRequestInterceptsSync, register, deregister, subscribe, flush, shutdown, diagnostics, isShutdown, plugins, codecs,
} = baton;
export default baton;
