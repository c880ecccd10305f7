'use strict';
// Shared by the Node facade (node/index.js) and the wasm facade (wasm/lib/api.js), like every
// module of node/lib/: nothing here touches a native module, so one source serves both (node/
// requires it; wasm/scripts/build.mjs embeds node/lib/ into each file it generates). Rules stay
// in the Rust core.
// The names of the runtime's enumerations, as the core spells them (the API exports both).

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

module.exports = { ERROR_KINDS, MIDDLEWARE_KINDS };
