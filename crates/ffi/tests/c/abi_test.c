/* Tests of Baton's C ABI, run under valgrind by `just test-go` (see just/go.just):
 * error statuses for bad input, handle lifetimes, user_data ownership, every callback shape. */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baton.h"

static int failures = 0;

#define EXPECT(cond)                                                              \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "%s:%d: expected %s (last error: %s)\n", __FILE__,   \
                    __LINE__, #cond, baton_last_error_message());                 \
            failures++;                                                           \
        }                                                                         \
    } while (0)

#define EXPECT_RC(call, status) EXPECT((call) == (status))
#define OK(call) EXPECT_RC(call, BATON_OK)

/* ----- a subscriber that keeps every event (appended on the dispatcher thread) ----- */
typedef struct {
    char *text;
    size_t len;
    int count;
} Events;

static int32_t collect(void *ud, const char *event_json) {
    Events *e = ud;
    size_t n = strlen(event_json);
    char *grown = realloc(e->text, e->len + n + 2);
    if (grown == NULL) {
        return BATON_ERR_INTERNAL;
    }
    e->text = grown;
    memcpy(e->text + e->len, event_json, n);
    e->len += n;
    e->text[e->len++] = '\n';
    e->text[e->len] = '\0';
    e->count++;
    return BATON_OK;
}

static int contains(const Events *e, const char *needle) { return e->text != NULL && strstr(e->text, needle) != NULL; }

/* ----- user_data that counts how often it is freed ----- */
static int freed = 0;
static void count_free(void *ud) {
    (void)ud;
    freed++;
}

static int32_t allow(void *ud, const char *info, const char *input, BatonOut *out) {
    (void)ud, (void)info, (void)input, (void)out;
    return BATON_OK;
}

static int32_t echo(void *ud, const char *input, BatonOut *out) {
    int *calls = ud;
    if (calls != NULL) {
        (*calls)++;
    }
    return baton_out_set_json(out, input);
}

static int32_t fail_upstream(void *ud, const char *input, BatonOut *out) {
    (void)ud, (void)input;
    baton_out_set_error(out, BATON_ERR_UPSTREAM, "provider said 503", "HttpError");
    return BATON_ERR_UPSTREAM;
}

static int32_t bad_json(void *ud, const char *input, BatonOut *out) {
    (void)ud, (void)input;
    int32_t rc = baton_out_set_json(out, "{not json");
    return rc == BATON_ERR_INVALID_ARGUMENT ? BATON_OK : BATON_ERR_INTERNAL;
}

/* An execution intercept: queues a mark, calls next twice, returns the second result. */
static int32_t twice(void *ud, const char *info, const char *input, BatonNext *next, BatonOut *out) {
    (void)ud, (void)info;
    char *r1 = NULL, *r2 = NULL;
    int32_t rc = baton_next_queue_mark(next, "intercepted", "{\"n\":1}", NULL);
    if (rc != BATON_OK) return rc;
    if ((rc = baton_next_call(next, input, &r1)) != BATON_OK) return rc;
    if ((rc = baton_next_call(next, "{\"second\":true}", &r2)) != BATON_OK) {
        baton_string_free(r1);
        return rc;
    }
    rc = baton_out_set_json(out, r2);
    baton_string_free(r1);
    baton_string_free(r2);
    return rc;
}

/* A chunk source over n numbers. */
typedef struct {
    int next, n;
} Counter;

static int32_t count_next(void *state, BatonOut *out) {
    Counter *c = state;
    if (c->next == c->n) return BATON_OK;
    char buf[32];
    snprintf(buf, sizeof buf, "%d", c->next++);
    return baton_out_set_json(out, buf);
}

static void free_counter(void *state) {
    free(state);
    freed++;
}

static int32_t numbers(void *ud, const char *request, BatonOut *out) {
    (void)request;
    Counter *c = malloc(sizeof *c);
    c->next = 0;
    c->n = *(int *)ud;
    return baton_out_set_chunk_source(out, c, count_next, free_counter);
}

/* A stream intercept: pulls the inner stream and adds 100 to every chunk. */
static int32_t plus_next(void *state, BatonOut *out) {
    BatonChunkStream *inner = state;
    char *chunk = NULL;
    int32_t rc = baton_chunk_stream_next(inner, &chunk);
    if (rc != BATON_OK || chunk == NULL) return rc;
    char buf[32];
    snprintf(buf, sizeof buf, "%d", atoi(chunk) + 100);
    baton_string_free(chunk);
    return baton_out_set_json(out, buf);
}

static int32_t plus_hundred(void *ud, const char *info, BatonChunkStream *inner, BatonOut *out) {
    (void)ud, (void)info;
    return baton_out_set_chunk_source(out, inner, plus_next, NULL);
}

static void test_bad_input(BatonRuntime rt) {
    BatonStack st = 0;
    OK(baton_stack_new(rt, &st));
    BatonScope sc = 0;
    EXPECT_RC(baton_scope_push(st, NULL, NULL, 0, &sc), BATON_ERR_INVALID_ARGUMENT);
    EXPECT(baton_last_error_kind() == BATON_ERR_INVALID_ARGUMENT && strstr(baton_last_error_message(), "name") != NULL);
    EXPECT_RC(baton_scope_push(st, "\xff\xfe", NULL, 0, &sc), BATON_ERR_INVALID_ARGUMENT);
    EXPECT(strstr(baton_last_error_message(), "UTF-8") != NULL);
    EXPECT_RC(baton_scope_push(st, "s", "{\"categry\":\"x\"}", 0, &sc), BATON_ERR_INVALID_ARGUMENT);
    EXPECT(strstr(baton_last_error_message(), "categry") != NULL);
    EXPECT_RC(baton_scope_push(st, "s", "[1,", 0, &sc), BATON_ERR_INVALID_ARGUMENT);
    EXPECT_RC(baton_scope_push(st, "s", NULL, 0, NULL), BATON_ERR_INVALID_ARGUMENT);
    char *res = NULL;
    EXPECT_RC(baton_tool_execute(st, "t", "{bad", NULL, 0, echo, NULL, &res), BATON_ERR_INVALID_ARGUMENT);
    EXPECT_RC(baton_tool_execute(st, "t", "{}", NULL, 0, NULL, NULL, &res), BATON_ERR_INVALID_ARGUMENT);
    EXPECT_RC(baton_tool_execute(st, "t", "{}", NULL, 0, echo, NULL, NULL), BATON_ERR_INVALID_ARGUMENT);
    EXPECT_RC(baton_llm_execute(st, "l", "{\"headers\":{}}", NULL, 0, echo, NULL, &res), BATON_ERR_INVALID_ARGUMENT);
    EXPECT(res == NULL);
    EXPECT_RC(baton_middleware_register(rt, "no_such_family", "x", 0, 0, false, allow, NULL, count_free), BATON_ERR_INVALID_ARGUMENT);
    EXPECT(freed == 1); /* user_data is released even when registration fails */
    EXPECT_RC(baton_middleware_register(rt, "tool_execution_intercept", "x", 0, 0, false, allow, NULL, count_free), BATON_ERR_INVALID_ARGUMENT);
    EXPECT(freed == 2);
    EXPECT_RC(baton_stack_traceparent(st, &res), BATON_ERR_INVALID_STATE);
    EXPECT(strcmp(baton_status_name(BATON_ERR_NOT_FOUND), "not_found") == 0 && strcmp(baton_status_name(99), "unknown") == 0);
    OK(baton_stack_free(st));
}

static void test_handles(BatonRuntime rt) {
    BatonStack st = 0;
    BatonScope a = 0, b = 0;
    OK(baton_stack_new(rt, &st));
    OK(baton_scope_push(st, "a", NULL, 0, &a));
    EXPECT_RC(baton_scope_pop(987654321, NULL), BATON_ERR_NOT_FOUND);
    EXPECT_RC(baton_scope_pop(st, NULL), BATON_ERR_NOT_FOUND); /* a stack id is not a scope */
    EXPECT_RC(baton_stack_fork(a, &b), BATON_ERR_NOT_FOUND);   /* nor a scope id a stack */
    OK(baton_scope_push(st, "b", NULL, 0, &b));
    OK(baton_scope_pop(a, "{\"output\":1}"));                  /* unwinds b */
    EXPECT_RC(baton_scope_pop(b, NULL), BATON_ERR_NOT_FOUND);
    EXPECT_RC(baton_scope_pop(a, NULL), BATON_ERR_NOT_FOUND);
    char *uuid = NULL;
    OK(baton_scope_uuid(a, &uuid));
    EXPECT(uuid != NULL && strlen(uuid) == 36);
    baton_string_free(uuid);
    baton_string_free(NULL);
    OK(baton_scope_free(a));
    OK(baton_scope_free(b));
    EXPECT_RC(baton_scope_free(a), BATON_ERR_NOT_FOUND);
    EXPECT_RC(baton_scope_uuid(a, &uuid), BATON_ERR_NOT_FOUND);
    EXPECT_RC(baton_runtime_free(0), BATON_ERR_INVALID_ARGUMENT);
    OK(baton_stack_free(st));
    EXPECT_RC(baton_stack_free(st), BATON_ERR_NOT_FOUND);

    /* A scope id keeps its stack alive: it can still be popped after the stack id is freed. */
    OK(baton_stack_new(rt, &st));
    OK(baton_scope_push(st, "outlives", NULL, 0, &a));
    OK(baton_stack_current_scope(st, &b));
    OK(baton_stack_free(st));
    OK(baton_scope_pop(b, NULL));
    EXPECT_RC(baton_scope_pop(a, NULL), BATON_ERR_NOT_FOUND);
    OK(baton_scope_free(a));
    OK(baton_scope_free(b));
}

static void test_calls(BatonRuntime rt, Events *ev) {
    BatonStack st = 0;
    OK(baton_stack_new(rt, &st));
    int calls = 0;
    char *res = NULL;
    OK(baton_execution_intercept_register(rt, "tool_execution_intercept", "twice", 0, 0, twice, NULL, count_free));
    OK(baton_tool_execute(st, "echo", "{\"first\":true}", "{\"tool_call_id\":\"c9\"}", 0, echo, &calls, &res));
    EXPECT(res != NULL && strcmp(res, "{\"second\":true}") == 0 && calls == 2);
    baton_string_free(res);
    res = NULL;
    EXPECT_RC(baton_tool_execute(st, "up", "{}", NULL, 0, fail_upstream, NULL, &res), BATON_ERR_UPSTREAM);
    EXPECT(strcmp(baton_last_error_message(), "provider said 503") == 0 && res == NULL);
    OK(baton_tool_execute(st, "bad", "{}", NULL, 0, bad_json, NULL, &res));
    EXPECT(res != NULL && strcmp(res, "null") == 0);
    baton_string_free(res);
    bool removed = false;
    OK(baton_middleware_deregister(rt, "tool_execution_intercept", "twice", 0, &removed));
    EXPECT(removed && freed == 3);
    OK(baton_middleware_deregister(rt, "tool_execution_intercept", "twice", 0, &removed));
    EXPECT(!removed);

    /* Manual lifecycle. */
    BatonCall call = 0;
    OK(baton_llm_start(st, "model", "{\"headers\":{\"Authorization\":\"k\"},\"content\":{}}", "{\"model_name\":\"m\"}", 0, &call));
    OK(baton_call_end(call, "{\"output\":{\"text\":\"hi\"}}"));
    EXPECT_RC(baton_call_end(call, NULL), BATON_ERR_NOT_FOUND);
    OK(baton_call_free(call));

    /* Streams: an intercept adds 100; one stream read to the end, one dropped early. */
    OK(baton_stream_intercept_register(rt, "plus", 0, 0, plus_hundred, NULL, count_free));
    int n = 3;
    BatonStream s = 0;
    OK(baton_llm_stream_start(st, "full", "{\"content\":{}}", NULL, 0, numbers, &n, &s));
    char *chunk = NULL;
    int sum = 0, got = 0;
    for (;;) {
        OK(baton_llm_stream_next(s, &chunk));
        if (chunk == NULL) break;
        sum += atoi(chunk);
        got++;
        baton_string_free(chunk);
    }
    EXPECT(got == 3 && sum == 303);
    OK(baton_llm_stream_free(s));
    OK(baton_llm_stream_start(st, "cut", "{\"content\":{}}", "{\"chunk_marks\":false}", 0, numbers, &n, &s));
    OK(baton_llm_stream_next(s, &chunk));
    baton_string_free(chunk);
    OK(baton_llm_stream_free(s));
    EXPECT_RC(baton_llm_stream_next(s, &chunk), BATON_ERR_NOT_FOUND);
    EXPECT(freed == 5); /* both counters */

    /* Scope-local registration: freed when its scope ends. */
    BatonScope sc = 0;
    OK(baton_scope_push(st, "local", NULL, 0, &sc));
    OK(baton_middleware_register(rt, "tool_conditional_execution", "g", 0, sc, false, allow, NULL, count_free));
    EXPECT_RC(baton_middleware_register(rt, "tool_conditional_execution", "g", 0, sc, false, allow, NULL, count_free), BATON_ERR_ALREADY_EXISTS);
    EXPECT(freed == 6);
    OK(baton_scope_pop(sc, NULL));
    EXPECT(freed == 7);
    OK(baton_scope_free(sc));

    bool done = false;
    OK(baton_runtime_flush(rt, 5000, &done));
    EXPECT(done);
    EXPECT(contains(ev, "\"name\":\"intercepted\""));
    EXPECT(contains(ev, "\"error.type\":\"upstream\""));
    EXPECT(contains(ev, "\"exception.type\":\"HttpError\""));
    EXPECT(contains(ev, "\"error.type\":\"cancelled\""));
    EXPECT(contains(ev, "[100,101,102]"));
    EXPECT(!contains(ev, "Authorization"));
    OK(baton_stack_free(st));
}

static void test_plugins_and_propagation(BatonRuntime rt) {
    char *out = NULL;
    OK(baton_plugin_validate(rt, "{\"version\":2,\"components\":[]}", &out));
    EXPECT(out != NULL && strstr(out, "\"level\":\"error\"") != NULL);
    baton_string_free(out);
    out = NULL;
    EXPECT_RC(baton_plugin_initialize(rt, "{\"version\":2}", &out), BATON_ERR_INVALID_ARGUMENT);
    OK(baton_plugin_clear(rt));
    OK(baton_codec_decode_response(
        "openai_chat", "{\"id\":\"r1\",\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}", &out));
    EXPECT(out != NULL && strstr(out, "\"finish_reason\":\"complete\"") != NULL);
    baton_string_free(out);
    EXPECT_RC(baton_codec_decode_request("cobol", "{}", &out), BATON_ERR_INVALID_ARGUMENT);
    EXPECT_RC(baton_codec_aggregate_stream("auto", "{}", &out), BATON_ERR_INVALID_ARGUMENT);

    BatonStack st = 0, remote = 0;
    BatonScope sc = 0;
    OK(baton_stack_new(rt, &st));
    OK(baton_scope_push(st, "root", NULL, 0, &sc));
    OK(baton_stack_propagation_context(st, &out));
    OK(baton_stack_from_propagation(rt, out, &remote));
    baton_string_free(out);
    OK(baton_stack_traceparent(remote, &out));
    EXPECT(out != NULL && strncmp(out, "00-", 3) == 0 && strlen(out) == 55);
    baton_string_free(out);
    EXPECT_RC(baton_stack_from_propagation(rt, "{\"version\":7}", &remote), BATON_ERR_INVALID_ARGUMENT);
    OK(baton_metric_emit(st, "latency", "[{\"value\":1.5}]", "ms"));
    EXPECT_RC(baton_metric_emit(st, "latency", "\"x\"", NULL), BATON_ERR_INVALID_ARGUMENT);
    OK(baton_mark_emit(st, "note", "{\"data\":{\"k\":1},\"category\":\"custom\"}", sc));
    OK(baton_scope_pop(sc, NULL));
    OK(baton_scope_free(sc));
    OK(baton_stack_free(remote));
    OK(baton_stack_free(st));
}

/* ----- a batch subscriber: keeps the events' names in order, fails the ones named "bad" ----- */
typedef struct {
    int calls;
    int events;
    int in_order;
} Batches;

static size_t gather(void *ud, const char *events, const size_t *ends, size_t count) {
    Batches *b = ud;
    size_t failed = 0, start = 0;
    char want[32];
    b->calls++;
    for (size_t i = 0; i < count; i++) {
        size_t len = ends[i] - start;
        const char *ev = events + start;
        if (len < 2 || ev[0] != '{' || ev[len - 1] != '}') {
            b->in_order = 0;
        }
        snprintf(want, sizeof want, "\"name\":\"m%d\"", b->events);
        int bad = len >= 12 && memmem(ev, len, "\"name\":\"bad\"", 12) != NULL;
        if (bad) {
            failed++;
        } else if (memmem(ev, len, want, strlen(want)) == NULL) {
            b->in_order = 0;
        }
        if (!bad) {
            b->events++;
        }
        start = ends[i];
    }
    return failed;
}

static void test_unobserved_and_batches(void) {
    BatonRuntime rt = 0;
    BatonStack st = 0;
    bool bare = false;
    OK(baton_runtime_new(NULL, &rt));
    OK(baton_stack_new(rt, &st));
    OK(baton_stack_unobserved(st, &bare));
    EXPECT(bare); /* nothing registered yet */
    EXPECT_RC(baton_stack_unobserved(st, NULL), BATON_ERR_INVALID_ARGUMENT);
    Batches b = {0, 0, 1};
    EXPECT_RC(baton_subscriber_register_batch(rt, "batches", 0, 0, NULL, &b, NULL), BATON_ERR_INVALID_ARGUMENT);
    OK(baton_subscriber_register_batch(rt, "batches", 0, 0, gather, &b, count_free));
    OK(baton_stack_unobserved(st, &bare));
    EXPECT(!bare);
    char name[16];
    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof name, "m%d", i);
        OK(baton_mark_emit(st, name, NULL, 0));
        if (i % 500 == 0) {
            OK(baton_mark_emit(st, "bad", NULL, 0));
        }
    }
    bool done = false;
    OK(baton_runtime_flush(rt, 5000, &done));
    EXPECT(done);
    EXPECT(b.events == 2000 && b.in_order); /* all handed over before flush returned, in order */
    EXPECT(b.calls >= 1 && b.calls < 2004); /* in batches */
    char *diag = NULL;
    OK(baton_runtime_diagnostics(rt, &diag));
    EXPECT(diag != NULL && strstr(diag, "\"subscriber_failures\":4") != NULL);
    baton_string_free(diag);
    int before = freed;
    OK(baton_runtime_shutdown(rt, 5000, &done));
    EXPECT(freed == before + 1); /* its user_data */
    EXPECT_RC(baton_stack_unobserved(st, &bare), BATON_ERR_ALREADY_SHUTDOWN);
    OK(baton_stack_free(st));
    OK(baton_runtime_free(rt));
}

/* The host-run form of a tool call: enter, run the callback here, exit. */
static void test_enter_exit(void) {
    BatonRuntime rt = 0;
    BatonStack st = 0;
    BatonCall call = 0;
    bool bare = false;
    OK(baton_runtime_new(NULL, &rt));
    OK(baton_stack_new(rt, &st));
    OK(baton_tool_enter(st, "t", "{\"a\":1}", NULL, 0, &bare, &call));
    EXPECT(bare && call == 0); /* nothing registered: just run it */
    EXPECT_RC(baton_tool_enter(st, "t", "{\"a\":", NULL, 0, &bare, &call), BATON_ERR_INVALID_ARGUMENT);
    Events ev = {NULL, 0, 0};
    OK(baton_subscriber_register(rt, "collect", 0, 0, collect, &ev, NULL));
    OK(baton_tool_enter(st, "search", "{\"q\":\"x\"}", "{\"tool_call_id\":\"c1\"}", 0, &bare, &call));
    EXPECT(!bare && call != 0);
    BatonScope top = 0;
    OK(baton_stack_current_scope(st, &top)); /* the call's scope is current while it runs */
    EXPECT(top != 0);
    OK(baton_scope_free(top));
    OK(baton_tool_exit(call, "{\"hits\":2}", 0, NULL, NULL));
    EXPECT_RC(baton_tool_exit(call, "{}", 0, NULL, NULL), BATON_ERR_NOT_FOUND); /* exited once */
    OK(baton_tool_enter(st, "fails", "{}", NULL, 0, &bare, &call));
    OK(baton_tool_exit(call, NULL, BATON_ERR_UPSTREAM, "provider down", "TimeoutError"));
    OK(baton_tool_enter(st, "bad-result", "{}", NULL, 0, &bare, &call));
    EXPECT_RC(baton_tool_exit(call, "{\"x\"", 0, NULL, NULL), BATON_ERR_INVALID_ARGUMENT);
    /* The explicit-length forms read exactly the given bytes (no NUL needed). */
    const char buf[] = "lookup{\"k\":1}[7]xyz";
    OK(baton_tool_enter_n(st, buf, 6, buf + 6, 7, NULL, 0, &bare, &call));
    EXPECT(!bare && call != 0);
    OK(baton_tool_exit_n(call, buf + 13, 3, 0, NULL, NULL));
    EXPECT_RC(baton_tool_exit_n(call, buf + 13, 3, 0, NULL, NULL), BATON_ERR_NOT_FOUND);
    BatonCall stale = call; /* its slot is reused by the next call: the old id stays dead */
    OK(baton_tool_enter_n(st, buf, 6, buf + 6, 7, NULL, 0, &bare, &call));
    EXPECT(call != 0 && call != stale);
    EXPECT_RC(baton_tool_exit_n(stale, buf + 13, 3, 0, NULL, NULL), BATON_ERR_NOT_FOUND);
    EXPECT_RC(baton_call_free(call), BATON_ERR_NOT_FOUND); /* not a manual call's id */
    EXPECT_RC(baton_tool_exit_n(st, buf + 13, 3, 0, NULL, NULL), BATON_ERR_NOT_FOUND); /* nor a stack's */
    OK(baton_tool_exit_n(call, buf + 13, 3, 0, NULL, NULL));
    EXPECT_RC(baton_tool_enter_n(st, NULL, 3, "{}", 2, NULL, 0, &bare, &call), BATON_ERR_INVALID_ARGUMENT);
    EXPECT(call == 0);
    EXPECT_RC(baton_tool_enter_n(st, "t", 1, NULL, 0, NULL, 0, &bare, &call), BATON_ERR_INVALID_ARGUMENT); /* "" is not JSON */
    EXPECT_RC(baton_tool_enter_n(st, "\xff", 1, "{}", 2, NULL, 0, &bare, &call), BATON_ERR_INVALID_ARGUMENT);
    EXPECT(strstr(baton_last_error_message(), "name: invalid UTF-8") != NULL);
    OK(baton_tool_enter_n(st, "n-fails", 7, "{}", 2, NULL, 0, &bare, &call));
    OK(baton_tool_exit_n(call, NULL, 0, BATON_ERR_TIMEOUT, "slow", NULL));
    OK(baton_tool_enter_n(st, "n-bad", 5, "{}", 2, NULL, 0, &bare, &call));
    EXPECT_RC(baton_tool_exit_n(call, "{}", 1, 0, NULL, NULL), BATON_ERR_INVALID_ARGUMENT); /* "{" */
    OK(baton_middleware_register(rt, "tool_conditional_execution", "g", 0, 0, false, allow, NULL, NULL));
    OK(baton_tool_enter(st, "t", "{}", NULL, 0, &bare, &call));
    EXPECT(!bare && call == 0); /* a guardrail sees the values: use baton_tool_execute */
    bool done = false;
    OK(baton_runtime_flush(rt, 5000, &done));
    EXPECT(ev.count == 14);
    EXPECT(contains(&ev, "\"name\":\"lookup\"") && contains(&ev, "\"data\":{\"k\":1}") && contains(&ev, "\"data\":[7]"));
    EXPECT(contains(&ev, "\"otel.status_description\":\"slow\"") && contains(&ev, "\"name\":\"n-bad\""));
    EXPECT(contains(&ev, "\"name\":\"search\"") && contains(&ev, "\"tool_call_id\":\"c1\""));
    EXPECT(contains(&ev, "\"data\":{\"q\":\"x\"}") && contains(&ev, "\"data\":{\"hits\":2}"));
    EXPECT(contains(&ev, "\"otel.status_description\":\"provider down\"") && contains(&ev, "\"error.type\":\"upstream\""));
    EXPECT(contains(&ev, "\"exception.type\":\"TimeoutError\""));
    OK(baton_runtime_shutdown(rt, 5000, &done));
    OK(baton_stack_free(st));
    OK(baton_runtime_free(rt));
    free(ev.text);
}

int main(void) {
    EXPECT(baton_abi_version() == BATON_ABI_VERSION);
    BatonRuntime rt = 0;
    OK(baton_runtime_new("{\"queue_capacity\":1024}", &rt));
    EXPECT_RC(baton_runtime_new("{\"overflow\":\"sometimes\"}", &rt), BATON_ERR_INVALID_ARGUMENT);
    Events ev = {NULL, 0, 0};
    OK(baton_subscriber_register(rt, "collect", 0, 0, collect, &ev, count_free));
    test_bad_input(rt);
    test_handles(rt);
    test_calls(rt, &ev);
    test_plugins_and_propagation(rt);
    test_unobserved_and_batches();
    test_enter_exit();
    bool done = false;
    OK(baton_runtime_shutdown(rt, 5000, &done));
    EXPECT(done && freed == 10); /* the subscriber's and the stream intercept's user_data, and the batch subscriber's */
    EXPECT_RC(baton_runtime_shutdown(rt, 5000, &done), BATON_ERR_ALREADY_SHUTDOWN);
    BatonStack st = 0;
    OK(baton_stack_new(rt, &st));
    BatonScope sc = 0;
    EXPECT_RC(baton_scope_push(st, "late", NULL, 0, &sc), BATON_ERR_ALREADY_SHUTDOWN);
    OK(baton_stack_free(st));
    OK(baton_runtime_free(rt));
    free(ev.text);
    if (failures) {
        fprintf(stderr, "abi_test: %d failure(s)\n", failures);
        return 1;
    }
    printf("abi_test: ok (%d events)\n", ev.count);
    return 0;
}
