/* C glue for the Go binding: each wrapper calls one function of include/baton.h and, on
 * failure, copies the thread-local error message within the same C call (a goroutine may move
 * to another thread between two cgo calls). Included by the package's cgo preambles. */
#ifndef BATON_GO_GLUE_H
#define BATON_GO_GLUE_H
#include <stdlib.h>
#include <string.h>
#include "baton.h"

/* The Go callbacks of export.go (as cgo declares them in _cgo_export.h). */
extern int32_t batonGoCallback(void *ud, char *input, BatonOut *out);
extern int32_t batonGoChunkNext(void *state, BatonOut *out);
extern void batonGoFree(void *ud);
extern int32_t batonGoHook(void *ud, char *info, char *input, BatonOut *out);
extern int32_t batonGoExec(void *ud, char *info, char *input, BatonNext *next, BatonOut *out);
extern int32_t batonGoStreamIntercept(void *ud, char *info, BatonChunkStream *inner, BatonOut *out);
extern size_t batonGoSubscriberBatch(void *ud, char *events, size_t *ends, size_t count);

#define GO_ERR(rc) do { if ((rc) != 0 && err) *err = strdup(baton_last_error_message()); } while (0)
#define UD(h) ((void *)(uintptr_t)(h))

static inline int32_t go_runtime_new(const char *cfg, uint64_t *out, char **err) { int32_t rc = baton_runtime_new(cfg, out); GO_ERR(rc); return rc; }
static inline int32_t go_runtime_free(uint64_t rt, char **err) { int32_t rc = baton_runtime_free(rt); GO_ERR(rc); return rc; }
static inline int32_t go_runtime_flush(uint64_t rt, uint64_t ms, bool *done, char **err) { int32_t rc = baton_runtime_flush(rt, ms, done); GO_ERR(rc); return rc; }
static inline int32_t go_runtime_shutdown(uint64_t rt, uint64_t ms, bool *done, char **err) { int32_t rc = baton_runtime_shutdown(rt, ms, done); GO_ERR(rc); return rc; }
static inline int32_t go_runtime_diagnostics(uint64_t rt, char **out, char **err) { int32_t rc = baton_runtime_diagnostics(rt, out); GO_ERR(rc); return rc; }

static inline int32_t go_stack_new(uint64_t rt, uint64_t *out, char **err) { int32_t rc = baton_stack_new(rt, out); GO_ERR(rc); return rc; }
static inline int32_t go_stack_fork(uint64_t st, uint64_t *out, char **err) { int32_t rc = baton_stack_fork(st, out); GO_ERR(rc); return rc; }
static inline int32_t go_stack_from_propagation(uint64_t rt, const char *ctx, uint64_t *out, char **err) { int32_t rc = baton_stack_from_propagation(rt, ctx, out); GO_ERR(rc); return rc; }
static inline int32_t go_stack_propagation_context(uint64_t st, char **out, char **err) { int32_t rc = baton_stack_propagation_context(st, out); GO_ERR(rc); return rc; }
static inline int32_t go_stack_traceparent(uint64_t st, char **out, char **err) { int32_t rc = baton_stack_traceparent(st, out); GO_ERR(rc); return rc; }

static inline int32_t go_scope_push(uint64_t st, const char *name, const char *opts, uint64_t parent, uint64_t *out, char **err) { int32_t rc = baton_scope_push(st, name, opts, parent, out); GO_ERR(rc); return rc; }
static inline int32_t go_scope_pop(uint64_t sc, const char *opts, char **err) { int32_t rc = baton_scope_pop(sc, opts); GO_ERR(rc); return rc; }
static inline int32_t go_scope_uuid(uint64_t sc, char **out, char **err) { int32_t rc = baton_scope_uuid(sc, out); GO_ERR(rc); return rc; }
static inline int32_t go_mark_emit(uint64_t st, const char *name, const char *opts, uint64_t parent, char **err) { int32_t rc = baton_mark_emit(st, name, opts, parent); GO_ERR(rc); return rc; }
static inline int32_t go_metric_emit(uint64_t st, const char *name, const char *m, const char *unit, char **err) { int32_t rc = baton_metric_emit(st, name, m, unit); GO_ERR(rc); return rc; }

/* Host-run tool calls (the Go hot path): Go passes its own bytes with their lengths (no copy,
 * no NUL), and the outcome comes back by value, so no Go variable escapes to the heap for an
 * out-parameter. */
typedef struct { int32_t rc; bool bare; uint64_t call; char *err; } go_enter_result;
typedef struct { int32_t rc; char *err; } go_status;
static inline go_enter_result go_tool_enter_n(uint64_t st, const char *name, size_t name_len, const char *args, size_t args_len, const char *opts, uint64_t parent) {
	go_enter_result r = {0, false, 0, NULL};
	r.rc = baton_tool_enter_n(st, name, name_len, args, args_len, opts, parent, &r.bare, &r.call);
	if (r.rc != 0) r.err = strdup(baton_last_error_message());
	return r;
}
static inline go_status go_tool_exit_n(uint64_t call, const char *result, size_t result_len, int32_t status, const char *msg, const char *exc) {
	go_status r = {0, NULL};
	r.rc = baton_tool_exit_n(call, result, result_len, status, msg, exc);
	if (r.rc != 0) r.err = strdup(baton_last_error_message());
	return r;
}
static inline int32_t go_tool_execute(uint64_t st, const char *name, const char *args, const char *opts, uint64_t parent, uintptr_t h, char **out, char **err) {
	int32_t rc = baton_tool_execute(st, name, args, opts, parent, (BatonCallbackFn)batonGoCallback, UD(h), out); GO_ERR(rc); return rc;
}
static inline int32_t go_llm_execute(uint64_t st, const char *name, const char *req, const char *opts, uint64_t parent, uintptr_t h, char **out, char **err) {
	int32_t rc = baton_llm_execute(st, name, req, opts, parent, (BatonCallbackFn)batonGoCallback, UD(h), out); GO_ERR(rc); return rc;
}
static inline int32_t go_llm_stream_start(uint64_t st, const char *name, const char *req, const char *opts, uint64_t parent, uintptr_t h, uint64_t *out, char **err) {
	int32_t rc = baton_llm_stream_start(st, name, req, opts, parent, (BatonCallbackFn)batonGoCallback, UD(h), out); GO_ERR(rc); return rc;
}
static inline int32_t go_llm_stream_next(uint64_t s, char **out, char **err) { int32_t rc = baton_llm_stream_next(s, out); GO_ERR(rc); return rc; }
static inline int32_t go_llm_stream_free(uint64_t s, char **err) { int32_t rc = baton_llm_stream_free(s); GO_ERR(rc); return rc; }

static inline int32_t go_tool_start(uint64_t st, const char *name, const char *args, const char *opts, uint64_t parent, uint64_t *out, char **err) { int32_t rc = baton_tool_start(st, name, args, opts, parent, out); GO_ERR(rc); return rc; }
static inline int32_t go_llm_start(uint64_t st, const char *name, const char *req, const char *opts, uint64_t parent, uint64_t *out, char **err) { int32_t rc = baton_llm_start(st, name, req, opts, parent, out); GO_ERR(rc); return rc; }
static inline int32_t go_call_end(uint64_t c, const char *opts, char **err) { int32_t rc = baton_call_end(c, opts); GO_ERR(rc); return rc; }
static inline int32_t go_call_uuid(uint64_t c, char **out, char **err) { int32_t rc = baton_call_uuid(c, out); GO_ERR(rc); return rc; }

static inline int32_t go_tool_conditional_execution(uint64_t st, const char *name, const char *args, char **err) { int32_t rc = baton_tool_conditional_execution(st, name, args); GO_ERR(rc); return rc; }
static inline int32_t go_llm_conditional_execution(uint64_t st, const char *name, const char *req, char **err) { int32_t rc = baton_llm_conditional_execution(st, name, req); GO_ERR(rc); return rc; }
static inline int32_t go_tool_request_intercepts(uint64_t st, const char *name, const char *args, char **out, char **err) { int32_t rc = baton_tool_request_intercepts(st, name, args, out); GO_ERR(rc); return rc; }
static inline int32_t go_llm_request_intercepts(uint64_t st, const char *name, const char *req, char **out, char **err) { int32_t rc = baton_llm_request_intercepts(st, name, req, out); GO_ERR(rc); return rc; }

static inline int32_t go_middleware_register(uint64_t rt, const char *kind, const char *name, int32_t prio, uint64_t scope, bool brk, uintptr_t h, char **err) {
	int32_t rc = baton_middleware_register(rt, kind, name, prio, scope, brk, (BatonHookFn)batonGoHook, UD(h), (BatonFreeFn)batonGoFree); GO_ERR(rc); return rc;
}
static inline int32_t go_execution_intercept_register(uint64_t rt, const char *kind, const char *name, int32_t prio, uint64_t scope, uintptr_t h, char **err) {
	int32_t rc = baton_execution_intercept_register(rt, kind, name, prio, scope, (BatonExecutionInterceptFn)batonGoExec, UD(h), (BatonFreeFn)batonGoFree); GO_ERR(rc); return rc;
}
static inline int32_t go_stream_intercept_register(uint64_t rt, const char *name, int32_t prio, uint64_t scope, uintptr_t h, char **err) {
	int32_t rc = baton_stream_intercept_register(rt, name, prio, scope, (BatonStreamInterceptFn)batonGoStreamIntercept, UD(h), (BatonFreeFn)batonGoFree); GO_ERR(rc); return rc;
}
static inline int32_t go_subscriber_register(uint64_t rt, const char *name, int32_t prio, uint64_t scope, uintptr_t h, char **err) {
	int32_t rc = baton_subscriber_register_batch(rt, name, prio, scope, (BatonSubscriberBatchFn)batonGoSubscriberBatch, UD(h), (BatonFreeFn)batonGoFree); GO_ERR(rc); return rc;
}
static inline int32_t go_middleware_deregister(uint64_t rt, const char *kind, const char *name, uint64_t scope, bool *removed, char **err) { int32_t rc = baton_middleware_deregister(rt, kind, name, scope, removed); GO_ERR(rc); return rc; }

static inline int32_t go_out_set_chunk_source(BatonOut *out, uintptr_t h) { return baton_out_set_chunk_source(out, UD(h), (BatonChunkNextFn)batonGoChunkNext, (BatonFreeFn)batonGoFree); }
static inline int32_t go_next_call(BatonNext *next, const char *in, char **out, char **err) { int32_t rc = baton_next_call(next, in, out); GO_ERR(rc); return rc; }
static inline int32_t go_next_queue_mark(BatonNext *next, const char *name, const char *data, const char *meta, char **err) { int32_t rc = baton_next_queue_mark(next, name, data, meta); GO_ERR(rc); return rc; }
static inline int32_t go_chunk_stream_next(BatonChunkStream *s, char **out, char **err) { int32_t rc = baton_chunk_stream_next(s, out); GO_ERR(rc); return rc; }
static inline int32_t go_plugin_validate(uint64_t rt, const char *doc, char **out, char **err) { int32_t rc = baton_plugin_validate(rt, doc, out); GO_ERR(rc); return rc; }
static inline int32_t go_plugin_initialize(uint64_t rt, const char *doc, char **out, char **err) { int32_t rc = baton_plugin_initialize(rt, doc, out); GO_ERR(rc); return rc; }
static inline int32_t go_plugin_clear(uint64_t rt, char **err) { int32_t rc = baton_plugin_clear(rt); GO_ERR(rc); return rc; }
static inline int32_t go_codec_decode_request(const char *c, const char *in, char **out, char **err) { int32_t rc = baton_codec_decode_request(c, in, out); GO_ERR(rc); return rc; }
static inline int32_t go_codec_encode_request(const char *c, const char *n, const char *o, char **out, char **err) { int32_t rc = baton_codec_encode_request(c, n, o, out); GO_ERR(rc); return rc; }
static inline int32_t go_codec_decode_response(const char *c, const char *in, char **out, char **err) { int32_t rc = baton_codec_decode_response(c, in, out); GO_ERR(rc); return rc; }
static inline int32_t go_codec_aggregate_stream(const char *c, const char *in, char **out, char **err) { int32_t rc = baton_codec_aggregate_stream(c, in, out); GO_ERR(rc); return rc; }
#endif
