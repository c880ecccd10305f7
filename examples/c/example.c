/* Baton from C: a scope, a guarded tool call, a streamed LLM call and a subscriber.
 *
 * Build and run (from the repository root, after `cargo build --release -p baton-ffi`):
 *   gcc -std=c11 -Wall -Wextra -Werror -Iinclude examples/c/example.c \
 *       -Ltarget/release -lbaton_ffi -Wl,-rpath,$PWD/target/release -o target/baton-example-c
 *   target/baton-example-c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baton.h"

/* Fails the program with Baton's last error when a call does not return BATON_OK. */
#define CHECK(call)                                                                       \
    do {                                                                                  \
        int32_t rc_ = (call);                                                             \
        if (rc_ != BATON_OK) {                                                            \
            fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #call,     \
                    baton_status_name(rc_), baton_last_error_message());                  \
            exit(1);                                                                      \
        }                                                                                 \
    } while (0)

/* A subscriber: prints one line per event (called on Baton's dispatcher thread). */
static int32_t print_event(void *user_data, const char *event_json) {
    int *count = user_data;
    (*count)++;
    printf("event: %.110s%s\n", event_json, strlen(event_json) > 110 ? "..." : "");
    return BATON_OK;
}

/* A guardrail that rejects the tool named "rm". */
static int32_t no_rm(void *user_data, const char *info_json, const char *input_json, BatonOut *out) {
    (void)user_data;
    (void)input_json;
    if (strstr(info_json, "\"name\":\"rm\"") != NULL) {
        return baton_out_set_reject(out, "rm is not allowed");
    }
    return BATON_OK;
}

/* The tool: returns a fixed JSON result (a real tool would parse input_json). */
static int32_t weather(void *user_data, const char *input_json, BatonOut *out) {
    (void)user_data;
    printf("tool called with %s\n", input_json);
    return baton_out_set_json(out, "{\"forecast\":\"sunny\",\"celsius\":21}");
}

/* A chunk source for the stream: yields the words of a sentence, one per pull. */
typedef struct {
    const char *words[3];
    int next;
} Words;

static int32_t next_word(void *state, BatonOut *out) {
    Words *w = state;
    if (w->next == 3) {
        return BATON_OK; /* nothing set: the end of the stream */
    }
    char chunk[64];
    snprintf(chunk, sizeof chunk, "{\"delta\":\"%s\"}", w->words[w->next++]);
    return baton_out_set_json(out, chunk);
}

static void free_words(void *state) { free(state); }

static int32_t chat(void *user_data, const char *request_json, BatonOut *out) {
    (void)user_data;
    (void)request_json;
    Words *w = malloc(sizeof *w);
    if (w == NULL) {
        baton_out_set_error(out, BATON_ERR_INTERNAL, "out of memory", NULL);
        return BATON_ERR_INTERNAL;
    }
    *w = (Words){{"Hello", "from", "C"}, 0};
    return baton_out_set_chunk_source(out, w, next_word, free_words);
}

int main(void) {
    if (baton_abi_version() != BATON_ABI_VERSION) {
        fprintf(stderr, "header and library ABI versions differ\n");
        return 1;
    }
    BatonRuntime rt = 0;
    CHECK(baton_runtime_new(NULL, &rt));

    int events = 0;
    CHECK(baton_subscriber_register(rt, "printer", 0, 0, print_event, &events, NULL));
    CHECK(baton_middleware_register(rt, "tool_conditional_execution", "no-rm", 0, 0, false, no_rm, NULL, NULL));

    BatonStack stack = 0;
    CHECK(baton_stack_new(rt, &stack));
    BatonScope agent = 0;
    CHECK(baton_scope_push(stack, "agent", "{\"category\":\"agent\"}", 0, &agent));

    char *result = NULL;
    CHECK(baton_tool_execute(stack, "weather", "{\"city\":\"Paris\"}", "{\"tool_call_id\":\"call-1\"}", 0, weather, NULL, &result));
    printf("tool result: %s\n", result);
    baton_string_free(result);

    int32_t rc = baton_tool_execute(stack, "rm", "{\"path\":\"/\"}", NULL, 0, weather, NULL, &result);
    printf("rm: %s (%s)\n", baton_status_name(rc), baton_last_error_message());
    if (rc != BATON_ERR_GUARDRAIL_REJECTED) {
        return 1;
    }

    BatonStream stream = 0;
    CHECK(baton_llm_stream_start(stack, "chat", "{\"headers\":{},\"content\":{\"messages\":[]}}", "{\"model_name\":\"demo\"}", 0, chat, NULL, &stream));
    for (;;) {
        char *chunk = NULL;
        CHECK(baton_llm_stream_next(stream, &chunk));
        if (chunk == NULL) {
            break;
        }
        printf("chunk: %s\n", chunk);
        baton_string_free(chunk);
    }
    CHECK(baton_llm_stream_free(stream));

    CHECK(baton_scope_pop(agent, "{\"output\":\"done\"}"));
    CHECK(baton_scope_free(agent));
    CHECK(baton_stack_free(stack));

    bool flushed = false;
    CHECK(baton_runtime_shutdown(rt, 5000, &flushed));
    CHECK(baton_runtime_free(rt));
    printf("%d events delivered, flushed: %s\n", events, flushed ? "yes" : "no");
    return events == 14 && flushed ? 0 : 1;
}
