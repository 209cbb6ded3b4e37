/* The seed corpus of core_api_fuzz, written by the harness itself so that the seeds always speak
 * the decoder's current language:  core_api_fuzz -mlos_write_corpus=DIR
 * Each seed is a short program that reaches one area of the API in a valid or nearly valid way;
 * libFuzzer mutates from there. c-tests/robustness/corpus/ holds their output: after changing
 * the grammar (core_api_fuzz.h), rerun the command above into that folder. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core_api_fuzz.h"

int mlos_write_corpus(const char* dir);

typedef struct {
    uint8_t b[1024];
    size_t n;
} seed_t;

static void put_all(seed_t* s, const int* v, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) s->b[s->n++] = (uint8_t)v[i];
}
#define P(s, ...) put_all(s, (const int[]){__VA_ARGS__}, sizeof((const int[]){__VA_ARGS__}) / sizeof(int))

static void put16(seed_t* s, unsigned v) { P(s, (int)(v & 0xff), (int)(v >> 8)); }
static void put_text(seed_t* s, const char* text) {
    size_t n = strlen(text);
    memcpy(s->b + s->n, text, n);
    s->n += n;
}
/* The bytes fill() takes for a tensor's data of size bytes: the first 16 (the rest is its pattern). */
static void put_fill(seed_t* s, int size) {
    int i;
    for (i = 0; i < size && i < 16; i++) P(s, i * 17 + 3);
}

/* FP32 [rows, cols] with data from the program; cols is a DIM_* selector (DIM_16, DIM_8) or a small one. */
static void fp32_tensor(seed_t* s, int name, int rows, int cols_dim) {
    int cols = cols_dim == DIM_SMALL ? 3 : cols_dim == DIM_16 ? 16 : 8;
    P(s, name, 11, 2, DIM_SMALL, rows);
    if (cols_dim == DIM_SMALL) P(s, DIM_SMALL, 3);
    else P(s, cols_dim);
    P(s, DATA_CONSISTENT);
    put_fill(s, rows * cols * 4);
    P(s, 0); /* extras */
}

static void echo_untyped(seed_t* s) {
    P(s, OP_INFERENCE, ID_ECHO, IN_RAW, 11, 0);
    put_text(s, "hello, fuzz");
    P(s, OUT_64);
    P(s, OP_INFERENCE, ID_ECHO, IN_RAW, 11, 0);
    put_text(s, "hello, fuzz");
    P(s, OUT_1); /* too small: echo says how much it needs */
}

static void echo_typed(seed_t* s) {
    P(s, OP_INFER, ID_ECHO, 2);
    fp32_tensor(s, NAME_INPUT, 2, DIM_SMALL);
    P(s, NAME_INPUT_IDS, 9, 1, DIM_SMALL, 3, DATA_CONSISTENT);
    put_fill(s, 24);
    P(s, 0);
    P(s, 2, 2 | 4 << 2, 0); /* two slots: a 24-byte caller buffer, one for the plugin to allocate */
}

static void mlp_typed(seed_t* s) {
    P(s, OP_INFER, ID_MLP, 1);
    fp32_tensor(s, NAME_INPUT, 3, DIM_16);
    P(s, 1, 0);
    P(s, OP_INFER2, ID_MLP, 1);
    fp32_tensor(s, NAME_INPUT, 3, DIM_16);
    P(s, 1 + 6, 2 | 6 << 2); /* a 192-byte caller buffer, per-tensor release */
}

static void lifecycle(seed_t* s) {
    P(s, OP_REGISTER, ID_FZ0, PL_ECHO, PATH_NULL, OPT_NULL);
    P(s, OP_LOAD, ID_FZ0);
    P(s, OP_INFERENCE, ID_FZ0, IN_FP32, 2, OUT_4K);
    P(s, OP_UNLOAD, ID_FZ0);
    P(s, OP_INFERENCE, ID_FZ0, IN_FP32, 2, OUT_4K);
    P(s, OP_UNREGISTER, ID_FZ0);
    P(s, OP_LOAD, ID_FZ0);
}

static void batching(seed_t* s) {
    P(s, OP_REGISTER, ID_FZ0 + 1, PL_ECHO, PATH_NULL, OPT_TEMPLATE, TPL_BATCHING, 2, 0);
    P(s, OP_LOAD, ID_FZ0 + 1);
    P(s, OP_INFER, ID_FZ0 + 1, 1);
    fp32_tensor(s, NAME_INPUT_0, 2, DIM_SMALL);
    P(s, 1, 0);
    P(s, OP_INFER, ID_ECHO_BATCH, 1);
    fp32_tensor(s, NAME_INPUT_0, 1, DIM_8);
    P(s, 1, 2 | 7 << 2);
}

static void views(seed_t* s) {
    P(s, OP_LIST_MODELS, TXT_8 | TXT_RETRY);
    P(s, OP_LIST_PLUGINS, TXT_1 | TXT_RETRY);
    P(s, OP_MODEL_INFO, ID_ECHO, TXT_256 | TXT_RETRY);
    P(s, OP_MODEL_INFO, ID_MLP, TXT_64K);
    P(s, OP_MODEL_INFO, ID_ECHO_BATCH, TXT_NO_SIZE);
    P(s, OP_LAYOUT, TXT_NULL_ZERO | TXT_RETRY);
}

static void odd_ids(seed_t* s) {
    P(s, OP_LOAD, ID_NULL);
    P(s, OP_INFERENCE, ID_EMPTY, IN_NULL_ZERO, OUT_NULL_ZERO);
    P(s, OP_MODEL_INFO, ID_LONG);
    put16(s, 300);
    P(s, TXT_64K);
    P(s, OP_UNLOAD, ID_ODD, 0);
    P(s, OP_REGISTER, ID_ODD, 6, PL_ECHO, PATH_NULL, OPT_NULL); /* a"b: JSON escaping */
    P(s, OP_MODEL_INFO, ID_ODD, 6, TXT_64K);
    P(s, OP_REGISTER, ID_RAW, 2, 0xff, 0xfe, PL_ECHO, PATH_NULL, OPT_NULL); /* invalid UTF-8 */
    P(s, OP_LIST_MODELS, TXT_64K);
}

static void bytes_tensor(seed_t* s) {
    int i;
    P(s, OP_INFER, ID_ECHO, 1, NAME_INPUT_0, 14, 1, DIM_SMALL, 3, DATA_CONSISTENT);
    for (i = 0; i < 16; i++) P(s, i % 9);
    P(s, 0);
    P(s, 1, 0);
}

static void bad_shapes(seed_t* s) {
    P(s, OP_INFER, ID_ECHO, 4);
    P(s, NAME_INPUT, 11, 9, DIM_ONE, DIM_ONE, DIM_ONE, DIM_ONE, DIM_ONE, DIM_ONE, DIM_ONE, DIM_ONE, DATA_NONE, 0);
    /* An unusable shape takes a byte count (u16) and that many data bytes, here 8 and 4. */
    P(s, NAME_INPUT, 11, 2, DIM_HUGE, 0, DIM_HUGE, 4, DATA_RANDOM_SIZE, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0);
    P(s, NAME_X, 9, 1, DIM_FREE, DATA_NEAR, 4, 0, 1, 2, 3, 4, 0);
    P(s, NAME_NULL, 20, 1, DIM_SMALL, 2, DATA_NULL_WITH_SIZE, 8, 0, 0);
    P(s, 4, 0, 0, 0, 0);
}

static void onnx_untyped(seed_t* s) {
    static const char json[] = "{\"input_ids\":[[1,2,3,4,5,6,7,8]],\"features\":[[0.5,0.5,0.5,0.5]]}";
    P(s, OP_REGISTER, ID_FZ0 + 2, PL_ONNX, PATH_MULTI_IO, OPT_NULL);
    P(s, OP_LOAD, ID_FZ0 + 2);
    P(s, OP_INFERENCE, ID_FZ0 + 2, IN_RAW);
    put16(s, sizeof json - 1);
    put_text(s, json);
    P(s, OUT_4K);
    P(s, OP_INFERENCE, ID_MLP, IN_JSON, 2 | 0 << 2, OUT_4K);
    P(s, OP_INFERENCE, ID_MLP, IN_FP32, 3, OUT_64);
}

/* The strings model: BYTES in, BYTES out, through ONNX Runtime's string tensors. */
static void onnx_strings(seed_t* s) {
    static const char json[] = "{\"text\":[\"abc\",\"\",\"\\u00e9\"]}";
    int i;
    P(s, OP_REGISTER, ID_FZ0 + 3, PL_ONNX, PATH_STRINGS, OPT_NULL);
    P(s, OP_LOAD, ID_FZ0 + 3);
    P(s, OP_INFER, ID_FZ0 + 3, 1, NAME_TEXT, 14, 1, DIM_SMALL, 3, DATA_CONSISTENT);
    for (i = 0; i < 16; i++) P(s, 5 + i % 4);
    P(s, 0);
    P(s, 2, 0, 3, 64, 0);
    P(s, OP_INFERENCE, ID_FZ0 + 3, IN_RAW);
    put16(s, sizeof json - 1);
    put_text(s, json);
    P(s, OUT_4K);
}

static void resources(seed_t* s) {
    P(s, OP_ALLOCATE, ID_ECHO, 1, 0, 3, 0);
    P(s, OP_ALLOCATE, ID_MLP, 1, 0, 2, 0);
    P(s, OP_ALLOCATE, ID_ECHO, 2, 2, 0, 0, 1, 1, 0);
    P(s, OP_DEALLOCATE, ID_ECHO);
    P(s, OP_ALLOCATE, ID_ECHO, REQS_NULL | 1);
}

static void plugins_and_cores(seed_t* s) {
    P(s, OP_LOAD_PLUGIN, PP_ECHO, 0, 0);
    P(s, OP_LOAD_PLUGIN, PP_BAD_MAJOR, 1, 1);
    P(s, OP_LOAD_PLUGIN, PP_NOT_ELF, 0, 0);
    P(s, OP_LOAD_PLUGIN, PP_BAD_INIT, 0, 2);
    P(s, OP_CREATE, CC_GUIDE, TXT_64K);
    P(s, OP_CREATE, CC_OWNED);
    P(s, OP_CREATE, CC_RAW, OPT_RAW, 13);
    put_text(s, "{\"plugins\":7}");
}

static void bad_cores(seed_t* s) {
    P(s, BAD_CORE | OP_LOAD, 0, ID_ECHO);
    P(s, BAD_CORE | OP_INFERENCE, 1, ID_ECHO, IN_FP32, 1, OUT_4K);
    P(s, BAD_CORE | OP_LIST_MODELS, 2, 0x34, 0x12, 0, 0, 0, 0, 0, 0, TXT_64K);
    P(s, BAD_CORE | OP_REGISTER, 1, ID_FZ0, PL_ECHO, PATH_NULL, OPT_NULL);
}

static void options(seed_t* s) {
    P(s, OP_REGISTER, ID_FZ0 + 3, PL_ECHO, PATH_NULL, OPT_MUTATED, TPL_DELAY, 0, 0, 22, 0, 0, '9'); /* one overwrite: delay_us 9 */
    P(s, OP_REGISTER, ID_FZ0 + 3, PL_ECHO, PATH_NULL, OPT_TEMPLATE, TPL_FRAMEWORK, 4, 0);
    P(s, OP_REGISTER, ID_FZ0, PL_ECHO, PATH_NULL, OPT_TEMPLATE, 130, 180); /* 130 % TPL_COUNT == TPL_ODD, bit 7: 200 levels deep */
    P(s, OP_REGISTER, ID_FZ0 + 1, PL_ONNX, PATH_MLP, OPT_TEMPLATE, TPL_CONFIG, 10);
    P(s, OP_LOAD, ID_FZ0 + 1);
    P(s, OP_REGISTER, ID_FZ0 + 2, PL_ONNX, PATH_MLP, OPT_TEMPLATE, TPL_BATCHING, 1, 0);
    P(s, OP_LOAD, ID_FZ0 + 2);
}

static void release_edges(seed_t* s) {
    P(s, OP_RELEASE, 0, 5);
    P(s, OP_RELEASE, 1, 3);
    P(s, OP_RELEASE, 2, 0);
    P(s, OP_INFER, ID_ECHO, INPUTS_NULL | 2, 1, 0);
    P(s, OP_INFER, ID_ECHO, 1);
    fp32_tensor(s, NAME_INPUT, 1, DIM_SMALL);
    P(s, OUTPUTS_NULL | 1);
}

/* 300 inputs (copies of one) into 300 plugin-allocated outputs, then 1025 into a few slots. */
static void many_tensors(seed_t* s) {
    P(s, OP_INFER, ID_ECHO, INPUTS_BIG | 0, 0);
    fp32_tensor(s, NAME_INPUT, 1, DIM_SMALL);
    P(s, OUTPUTS_BIG | 0, 0, 0, 0, 0, 0, 0, 0, 0);
    P(s, OP_INFER, ID_ECHO, INPUTS_BIG | 2, 0);
    fp32_tensor(s, NAME_INPUT, 1, DIM_SMALL);
    P(s, 2, 0, 0);
}

static void rebinding(seed_t* s) {
    P(s, OP_UNLOAD, ID_ECHO);
    P(s, OP_INFER, ID_ECHO, 0, 1, 0);
    P(s, OP_UNREGISTER, ID_MLP);
    P(s, OP_INFERENCE, ID_MLP, IN_FP32, 1, OUT_4K);
    P(s, OP_REGISTER, ID_MLP, PL_ECHO, PATH_NULL, OPT_NULL);
    P(s, OP_LOAD, ID_MLP);
    P(s, OP_INFER, ID_MLP, 1);
    fp32_tensor(s, NAME_INPUT, 3, DIM_16);
    P(s, 1, 0);
}

int mlos_write_corpus(const char* dir) {
    static const struct {
        const char* name;
        void (*make)(seed_t*);
    } seeds[] = {
        {"echo_untyped", echo_untyped}, {"echo_typed", echo_typed}, {"mlp_typed", mlp_typed},
        {"lifecycle", lifecycle}, {"batching", batching}, {"views", views}, {"odd_ids", odd_ids},
        {"bytes_tensor", bytes_tensor}, {"bad_shapes", bad_shapes}, {"onnx_untyped", onnx_untyped}, {"onnx_strings", onnx_strings},
        {"resources", resources}, {"plugins_and_cores", plugins_and_cores}, {"bad_cores", bad_cores},
        {"options", options}, {"release_edges", release_edges}, {"many_tensors", many_tensors}, {"rebinding", rebinding},
    };
    size_t i;
    for (i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        char path[4096];
        seed_t s;
        FILE* f;
        s.n = 0;
        seeds[i].make(&s);
        snprintf(path, sizeof path, "%s/%s", dir, seeds[i].name);
        f = fopen(path, "wb");
        if (!f || fwrite(s.b, 1, s.n, f) != s.n || fclose(f) != 0) {
            perror(path);
            return 1;
        }
        printf("%s: %zu bytes\n", path, s.n);
    }
    return 0;
}
