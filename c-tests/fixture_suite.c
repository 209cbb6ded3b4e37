#include "fixture_suite.h"

#include <pthread.h>

int suite_typed_once(const fixture_suite_t* s, size_t f, int report) {
    const ref_case_t* c = &s->refs[f];
    smi_tensor_t inputs[REF_MAX_TENSORS], outputs[REF_MAX_TENSORS];
    size_t num_outputs = REF_MAX_TENSORS;
    int i, bad = 0;
    char why[256];
    for (i = 0; i < c->num_inputs; i++) inputs[i] = ref_as_input(&c->inputs[i]);
    memset(outputs, 0, sizeof outputs);
    if (s->api->infer(s->core, s->models[f], inputs, (size_t)c->num_inputs, outputs, &num_outputs) != SMI_SUCCESS) {
        if (report) fprintf(stderr, "infer %s: %s\n", s->models[f], s->api->last_error());
        return 1;
    }
    if ((int)num_outputs != c->num_outputs) {
        if (report) fprintf(stderr, "%s: %zu outputs, expected %d\n", s->models[f], num_outputs, c->num_outputs);
        bad++;
    }
    for (i = 0; i < c->num_outputs && i < (int)num_outputs; i++) {
        if (!ref_matches(&c->outputs[i], &outputs[i], s->tolerance, why, sizeof why)) {
            if (report) fprintf(stderr, "%s: %s\n", s->models[f], why);
            bad++;
        }
        if (outputs[i].name == NULL || strcmp(outputs[i].name, c->outputs[i].name) != 0) {
            if (report) fprintf(stderr, "%s: output %d is named %s, expected %s\n", s->models[f], i,
                                outputs[i].name ? outputs[i].name : "(null)", c->outputs[i].name);
            bad++;
        }
        if (outputs[i].release == NULL) bad++; /* an empty slot must come back plugin-owned */
    }
    s->api->release_outputs(outputs, num_outputs);
    return bad;
}

void suite_test_typed(const fixture_suite_t* s) {
    size_t f;
    for (f = 0; f < s->count; f++) CHECK(suite_typed_once(s, f, 1) == 0, "typed inference of %s", s->models[f]);
}

void suite_test_json(const fixture_suite_t* s) {
    static char answer[1 << 20];
    char why[256];
    size_t f;
    int i;
    for (f = 0; f < s->count; f++) {
        char* json = ref_inputs_json(&s->refs[f]);
        size_t size = sizeof answer - 1;
        EXPECT_OK(s->api, s->api->inference(s->core, s->models[f], json, strlen(json), answer, &size));
        answer[size] = 0;
        for (i = 0; i < s->refs[f].num_outputs; i++)
            CHECK(ref_matches_json(&s->refs[f].outputs[i], answer, s->tolerance, why, sizeof why), "%s JSON: %s\n%s", s->models[f], why,
                  answer);
        size = 10;
        EXPECT_STATUS(s->api, s->api->inference(s->core, s->models[f], json, strlen(json), answer, &size), SMI_ERROR_BUFFER_TOO_SMALL,
                      "bytes needed");
        free(json);
    }
}

void suite_test_raw(const fixture_suite_t* s, size_t f, const char* model_id) {
    static char answer[1 << 16];
    char why[256];
    const ref_tensor_t* in = &s->refs[f].inputs[0];
    smi_tensor_t got = ref_as_input(&s->refs[f].outputs[0]);
    size_t size = sizeof answer;
    EXPECT_OK(s->api, s->api->inference(s->core, model_id, in->data, in->byte_size, answer, &size));
    got.data = answer;
    got.byte_size = size;
    CHECK(ref_matches(&s->refs[f].outputs[0], &got, s->tolerance, why, sizeof why), "%s raw: %s", model_id, why);
}

typedef struct {
    const fixture_suite_t* suite;
    int iterations;
    int failures;
} worker_t;

static void* worker(void* arg) {
    worker_t* w = (worker_t*)arg;
    int it;
    size_t f;
    for (it = 0; it < w->iterations; it++)
        for (f = 0; f < w->suite->count; f++) w->failures += suite_typed_once(w->suite, f, 0);
    return NULL;
}

void suite_test_threads(const fixture_suite_t* s, int threads, int iterations) {
    pthread_t ids[64];
    worker_t workers[64];
    int t, total = 0;
    if (threads > 64) threads = 64;
    for (t = 0; t < threads; t++) {
        workers[t].suite = s;
        workers[t].iterations = iterations;
        workers[t].failures = 0;
        pthread_create(&ids[t], NULL, worker, &workers[t]);
    }
    for (t = 0; t < threads; t++) {
        pthread_join(ids[t], NULL);
        total += workers[t].failures;
    }
    CHECK(total == 0, "%d of %d concurrent inferences differed from the references", total, threads * iterations * (int)s->count);
}
