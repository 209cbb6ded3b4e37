/* Items of core_hostile_test.c about what crosses the boundary: plugins that lie about counts,
 * sizes, statuses and outputs; callers whose ids and paths are bytes, not text; shapes whose
 * products overflow; plugin paths that are not files. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hostile_items.h"

/* An expected failure with two fragments in its message (the second checked only when the status is right). */
#define EXPECT_STATUS2(api, expr, status, needle, needle2)                  \
    do {                                                                    \
        int got2_ = (int)(expr);                                            \
        EXPECT_STATUS(api, got2_, status, needle);                          \
        if (got2_ == (int)(status)) EXPECT_STATUS(api, got2_, status, needle2); \
    } while (0)

static const char* const BROKE = "broke the SMI contract";

/* After a failed typed infer the caller owns nothing: no output has a release left. */
static void expect_outputs_clear(const smi_tensor_t* outputs, size_t capacity, const char* what) {
    size_t i;
    for (i = 0; i < capacity; i++)
        CHECK(outputs[i].release == NULL, "%s: output %zu still has a release after the call failed", what, i);
}

/* Every output the plugin allocated was released exactly once. */
static void expect_balanced(const hostile_lib_t* lib, const char* what) {
    hostile_stats_t s = hostile_read(lib);
    CHECK(s.allocs == s.releases, "%s: the plugin allocated %ld outputs and %ld were released", what, s.allocs, s.releases);
    CHECK(s.double_releases == 0, "%s: %ld outputs were released twice", what, s.double_releases);
    CHECK(s.bad_releases == 0, "%s: release was called %ld times on tensors the plugin never gave out", what, s.bad_releases);
}

/* Typed infer of one [1,4] FP32 input into `capacity` empty output slots (the plugin allocates). */
static int infer_one(mlos_core_t* core, const char* id, smi_tensor_t* outputs, size_t capacity) {
    static float x[4] = {1, 2, 3, 4};
    smi_tensor_t input = fp32_tensor("x", x, 1, 4);
    size_t n = capacity;
    memset(outputs, 0, capacity * sizeof *outputs);
    return api.infer(core, id, &input, 1, outputs, &n);
}

static void destroy(mlos_core_t* core) {
    phase("destroying the core");
    EXPECT_OK(&api, api.destroy(core));
}

/* ------------------------------------------------------------------ 2: lying *num_outputs */

static void lying_count(int batching, const char* keywords, const char* number) {
    hostile_lib_t lib;
    mlos_core_t* core = core_with_hostile(0, &lib);
    smi_tensor_t outputs[2];
    int status;
    add_hostile(core, "liar", "hostile", keywords, batching);
    phase(batching ? "batched infer on a model claiming 100000 outputs" : "infer on a model claiming 7 outputs");
    status = infer_one(core, "liar", outputs, 2);
    EXPECT_STATUS2(&api, status, SMI_ERROR_RUNTIME, BROKE, number);
    expect_outputs_clear(outputs, 2, keywords);
    expect_balanced(&lib, keywords);
    if (status == SMI_SUCCESS) api.release_outputs(outputs, 2); /* ours after all: give them back */
    destroy(core);
}

#define BATCH_CALLERS 8
#define BATCH_CALLS 50

typedef struct {
    mlos_core_t* core;
    int wrong;
    char first[320];
} batch_caller_t;

/* One of several threads at once, so that the batcher merges requests into one plugin call. */
static void* lying_batch_caller(void* arg) {
    batch_caller_t* c = (batch_caller_t*)arg;
    smi_tensor_t outputs[2];
    int i;
    for (i = 0; i < BATCH_CALLS; i++) {
        int status = infer_one(c->core, "liar", outputs, 2);
        const char* error = api.last_error();
        int right = status == SMI_ERROR_RUNTIME && error && strstr(error, BROKE) && strstr(error, "100000") &&
                    outputs[0].release == NULL && outputs[1].release == NULL;
        if (!right && c->wrong++ == 0)
            snprintf(c->first, sizeof c->first, "status %d, releases %s/%s, %s", status, outputs[0].release ? "set" : "NULL",
                     outputs[1].release ? "set" : "NULL", status && error ? error : "");
        if (status == SMI_SUCCESS) api.release_outputs(outputs, 2);
    }
    return NULL;
}

static void lying_count_concurrently(void) {
    hostile_lib_t lib;
    mlos_core_t* core = core_with_hostile(0, &lib);
    pthread_t threads[BATCH_CALLERS];
    batch_caller_t callers[BATCH_CALLERS];
    int i;
    add_hostile(core, "liar", "hostile", "outputs=100000", 1);
    phase("8 threads of batched infer on a model claiming 100000 outputs");
    for (i = 0; i < BATCH_CALLERS; i++) {
        callers[i].core = core;
        callers[i].wrong = 0;
        callers[i].first[0] = '\0';
        pthread_create(&threads[i], NULL, lying_batch_caller, &callers[i]);
    }
    for (i = 0; i < BATCH_CALLERS; i++) {
        pthread_join(threads[i], NULL);
        CHECK(callers[i].wrong == 0, "thread %d: %d of %d batched calls answered wrongly, first: %s", i, callers[i].wrong,
              BATCH_CALLS, callers[i].first);
    }
    expect_balanced(&lib, "outputs=100000 from 8 threads");
    destroy(core);
}

void item_lying_num_outputs_batched(void) {
    lying_count(1, "outputs=100000", "100000");
    lying_count_concurrently();
}
void item_lying_num_outputs(void) { lying_count(0, "outputs=7", "7"); }

/* ------------------------------------------------------------------ 3: lying sizes, model io, outputs */

void item_lying_output_size(void) {
    hostile_lib_t lib;
    mlos_core_t* core = core_with_hostile(0, &lib);
    char input[16] = "sixteen bytes..", output[16];
    size_t size = sizeof output;
    add_hostile(core, "liar", "hostile", "output_size=1032", 0);
    phase("inference on a model claiming 1032 bytes written into 16");
    EXPECT_STATUS2(&api, api.inference(core, "liar", input, sizeof input, output, &size), SMI_ERROR_RUNTIME, BROKE, "1032");
    destroy(core);
}

/* model_info gives what it can: the specs of a plugin that lies about them are left out. */
static void expect_info_without_specs(mlos_core_t* core, const char* id) {
    static char json[1 << 16];
    size_t size = sizeof json;
    EXPECT_OK(&api, api.model_info(core, id, json, &size));
    CHECK(strstr(json, "\"inputs\"") == NULL, "model_info of '%s' has specs the plugin lied about: %.300s", id, json);
}

void item_lying_model_io(void) {
    static const char* const modes[][2] = {{"io-huge", "io=huge"}, {"io-grow", "io=grow"}};
    hostile_lib_t lib;
    mlos_core_t* core = core_with_hostile(0, &lib);
    size_t i;
    for (i = 0; i < 2; i++) {
        phase(modes[i][1]);
        EXPECT_OK(&api, register_hostile(core, modes[i][0], "hostile", modes[i][1], 0));
        expect_info_without_specs(core, modes[i][0]);
        EXPECT_OK(&api, api.load_model(core, modes[i][0]));
        expect_info_without_specs(core, modes[i][0]);
    }
    destroy(core);
}

void item_bad_typed_outputs(void) {
    static const char* const kinds[] = {"name", "dtype", "ndim", "bytes", "norelease"};
    hostile_lib_t lib;
    mlos_core_t* core = core_with_hostile(0, &lib);
    size_t i;
    for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        char id[32], keywords[32];
        smi_tensor_t outputs[2];
        int status;
        snprintf(id, sizeof id, "bad-%s", kinds[i]);
        snprintf(keywords, sizeof keywords, "bad=%s", kinds[i]);
        add_hostile(core, id, "hostile", keywords, 0);
        phase(keywords);
        status = infer_one(core, id, outputs, 2);
        EXPECT_STATUS(&api, status, SMI_ERROR_RUNTIME, BROKE);
        expect_outputs_clear(outputs, 2, keywords);
        expect_balanced(&lib, keywords);
        if (status == SMI_SUCCESS) api.release_outputs(outputs, 2); /* the next kind starts balanced */
    }
    destroy(core);
}

/* ------------------------------------------------------------------ 5: ids and paths are bytes */

/* s with bytes outside printable ASCII as \xNN, for messages. */
static const char* escaped(const char* s, char* out, size_t size) {
    size_t n = 0;
    for (; *s && n + 5 < size; s++) {
        unsigned char c = (unsigned char)*s;
        n += (size_t)(c >= 0x20 && c < 0x7f ? snprintf(out + n, size - n, "%c", c) : snprintf(out + n, size - n, "\\x%02x", c));
    }
    out[n] = '\0';
    return out;
}

static const int lookup_refusals[] = {SMI_ERROR_INVALID_PARAM, SMI_ERROR_NOT_FOUND};

/* A call naming "\xfe" must neither succeed nor touch the model registered as U+FFFD. */
static void expect_refused_lookup(const char* what, int status) {
    CHECK(status_in(status, lookup_refusals, 2), "%s on \"\\xfe\" returned %d, not INVALID_PARAM or NOT_FOUND (%s)", what, status,
          api.last_error() ? api.last_error() : "");
}

void item_bytes_ids(void) {
    static const char* const replacement = "\xef\xbf\xbd"; /* U+FFFD: what a lossy decoder makes of \xfe */
    hostile_lib_t lib;
    mlos_core_t* core = core_with_hostile(0, &lib);
    char in[8] = "bytes", out[8], json[4096];
    size_t size = sizeof out;
    smi_tensor_t outputs[2];
    hostile_stats_t before, after;
    phase("ids that are not UTF-8");
    EXPECT_STATUS2(&api, register_hostile(core, "\xff", "hostile", "", 0), SMI_ERROR_INVALID_PARAM, "not valid UTF-8 at byte", "byte 0");
    EXPECT_STATUS2(&api, register_hostile(core, "ok\xfe", "hostile", "", 0), SMI_ERROR_INVALID_PARAM, "not valid UTF-8 at byte", "byte 2");
    add_hostile(core, replacement, "hostile", "", 0);
    before = hostile_read(&lib);
    expect_refused_lookup("inference", api.inference(core, "\xfe", in, sizeof in, out, &size));
    expect_refused_lookup("infer", infer_one(core, "\xfe", outputs, 2));
    size = sizeof json;
    expect_refused_lookup("model_info", api.model_info(core, "\xfe", json, &size));
    expect_refused_lookup("unload_model", api.unload_model(core, "\xfe"));
    expect_refused_lookup("unregister_model", api.unregister_model(core, "\xfe"));
    after = hostile_read(&lib);
    CHECK(after.inference_calls == before.inference_calls && after.infer_calls == before.infer_calls,
          "a request naming \"\\xfe\" reached the model registered as U+FFFD");
    CHECK(after.live == 1, "a call naming \"\\xfe\" unregistered the U+FFFD model");
    size = sizeof out;
    EXPECT_OK(&api, api.inference(core, replacement, in, sizeof in, out, &size)); /* still loaded */
    destroy(core);
}

static int copy_file(const char* from, const char* to) {
    char buffer[1 << 16];
    ssize_t n;
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    while (in >= 0 && out >= 0 && (n = read(in, buffer, sizeof buffer)) > 0)
        if (write(out, buffer, (size_t)n) != n) n = -1;
    if (in >= 0) close(in);
    if (out >= 0) close(out);
    return in >= 0 && out >= 0 ? 0 : -1;
}

void item_bytes_plugin_path(void) {
    char dir[512], path[600], shown[1024], in[8] = "bytes", out[8];
    size_t size = sizeof out;
    mlos_core_t* core = NULL;
    snprintf(dir, sizeof dir, "%s/dir\xff", env.temp_dir);
    snprintf(path, sizeof path, "%s/libx.so", dir);
    if (mkdir(dir, 0755) != 0 || copy_file(hostile_path(0), path) != 0) {
        CHECK(0, "cannot copy the hostile plugin to %s", escaped(path, shown, sizeof shown));
        return;
    }
    EXPECT_OK(&api, api.create(NULL, &core));
    phase("load_plugin from a directory named with byte 0xff");
    EXPECT_OK(&api, api.load_plugin(core, path, "bytes", NULL));
    NOTE("plugin path %s", escaped(path, shown, sizeof shown));
    add_hostile(core, "m", "bytes", "", 0);
    EXPECT_OK(&api, api.inference(core, "m", in, sizeof in, out, &size));
    destroy(core);
}

void item_bytes_model_path(void) {
    static const char* const path = "/tmp/m\xff\xfe.bin";
    hostile_lib_t lib;
    mlos_core_t* core = core_with_hostile(0, &lib);
    hostile_stats_t s;
    char shown[2048];
    phase("register and load a model path that is not UTF-8");
    EXPECT_OK(&api, api.register_model(core, "m", "hostile", path, NULL));
    s = hostile_read(&lib);
    CHECK(strcmp(s.last_register_path, path) == 0, "register_model got path \"%s\"", escaped(s.last_register_path, shown, sizeof shown));
    EXPECT_OK(&api, api.load_model(core, "m"));
    s = hostile_read(&lib);
    CHECK(strcmp(s.last_load_path, path) == 0, "load_model got path \"%s\"", escaped(s.last_load_path, shown, sizeof shown));
    destroy(core);
}

/* ------------------------------------------------------------------ 7a, 7b: statuses and releases */

void item_status_out_of_range(void) {
    hostile_lib_t lib;
    mlos_core_t* core = core_with_hostile(0, &lib);
    char in[8] = "status", out[8];
    size_t size = sizeof out;
    smi_tensor_t outputs[2];
    add_hostile(core, "plus", "hostile", "status=12345", 0);
    add_hostile(core, "minus", "hostile", "status=-12345", 0);
    phase("plugin statuses outside smi_status_t");
    EXPECT_STATUS(&api, api.inference(core, "plus", in, sizeof in, out, &size), SMI_ERROR_RUNTIME, "status 12345");
    size = sizeof out;
    EXPECT_STATUS(&api, api.inference(core, "minus", in, sizeof in, out, &size), SMI_ERROR_RUNTIME, "status -12345");
    EXPECT_STATUS(&api, infer_one(core, "plus", outputs, 2), SMI_ERROR_RUNTIME, "status 12345");
    EXPECT_STATUS(&api, infer_one(core, "minus", outputs, 2), SMI_ERROR_RUNTIME, "status -12345");
    destroy(core);
}

void item_release_twice(void) {
    hostile_lib_t lib;
    mlos_core_t* core = core_with_hostile(0, &lib);
    smi_tensor_t outputs[2];
    hostile_stats_t s;
    int i;
    add_hostile(core, "m", "hostile", "", 0);
    EXPECT_OK(&api, infer_one(core, "m", outputs, 2));
    CHECK(outputs[0].release != NULL && outputs[1].release != NULL, "the plugin's outputs came back without release");
    phase("first mlos_core_release_outputs");
    api.release_outputs(outputs, 2);
    for (i = 0; i < 2; i++) CHECK(outputs[i].release == NULL, "after mlos_core_release_outputs output %d keeps its release", i);
    s = hostile_read(&lib);
    CHECK(s.allocs == 2 && s.releases == 2, "%ld allocated, %ld released", s.allocs, s.releases);
    phase("second mlos_core_release_outputs on the same outputs");
    api.release_outputs(outputs, 2);
    s = hostile_read(&lib);
    CHECK(s.double_releases == 0 && s.bad_releases == 0, "the second call released again: %ld double, %ld bad releases",
          s.double_releases, s.bad_releases);
    destroy(core);
}

/* ------------------------------------------------------------------ 7e: plugin paths that are not files */

typedef struct {
    const char* path;
    volatile int done;
    int unblocked;
} fifo_opener_t;

/* After 2 s of a blocked load, opens the FIFO's write end (and closes it) so the reader gets EOF. */
static void* unblock_fifo(void* arg) {
    fifo_opener_t* f = (fifo_opener_t*)arg;
    double start = now_ms();
    while (!f->done) {
        if (now_ms() - start > 2000) {
            int fd = open(f->path, O_WRONLY | O_NONBLOCK);
            if (fd >= 0) {
                f->unblocked++;
                close(fd);
            }
        }
        sleep_ms(10);
    }
    return NULL;
}

static void expect_fifo_refused(mlos_core_t* core) {
    char path[512];
    fifo_opener_t opener = {path, 0, 0};
    pthread_t thread;
    double started, took;
    int status;
    snprintf(path, sizeof path, "%s/fifo.so", env.temp_dir);
    CHECK(mkfifo(path, 0644) == 0, "mkfifo %s failed", path);
    pthread_create(&thread, NULL, unblock_fifo, &opener);
    phase("load_plugin on a FIFO");
    started = now_ms();
    status = api.load_plugin(core, path, NULL, NULL);
    took = now_ms() - started;
    opener.done = 1;
    pthread_join(thread, NULL);
    EXPECT_STATUS(&api, status, SMI_ERROR_INVALID_PARAM, "not a regular file");
    CHECK(took < 1000, "load_plugin on a FIFO took %.0f ms (the test opened its write end %d times to unblock it)", took,
          opener.unblocked);
    NOTE("FIFO: status %d after %.0f ms", status, took);
}

void item_plugin_path_checks(void) {
    mlos_core_t* core = NULL;
    char missing[512];
    snprintf(missing, sizeof missing, "%s/missing.so", env.temp_dir);
    EXPECT_OK(&api, api.create(NULL, &core));
    phase("load_plugin on a missing file");
    EXPECT_STATUS(&api, api.load_plugin(core, missing, NULL, NULL), SMI_ERROR_NOT_FOUND, (const char*)NULL);
    phase("load_plugin on a directory");
    EXPECT_STATUS(&api, api.load_plugin(core, env.temp_dir, NULL, NULL), SMI_ERROR_INVALID_PARAM, "is a directory");
    expect_fifo_refused(core);
    destroy(core);
}

/* ------------------------------------------------------------------ 8: shape products */

static const int64_t BIG_DIM = ((int64_t)1 << 62) + 1; /* times 4 bytes wraps to 4 in 64 bits */

static void expect_shape_refused(mlos_core_t* core, const char* id, const char* input_name) {
    float four_bytes = 0;
    smi_tensor_t input = fp32_tensor(input_name, &four_bytes, 1, 1), outputs[2];
    size_t n = 2;
    int status;
    input.shape[1] = BIG_DIM;
    input.byte_size = 4;
    memset(outputs, 0, sizeof outputs);
    phase(id);
    status = api.infer(core, id, &input, 1, outputs, &n);
    EXPECT_STATUS(&api, status, SMI_ERROR_INVALID_PARAM, "4611686018427387905");
    if (status == SMI_SUCCESS) api.release_outputs(outputs, 2);
}

static void register_onnx_mlp(mlos_core_t* core, int load) {
    char path[4096];
    snprintf(path, sizeof path, "%s/mlp.onnx", env.onnx_dir);
    EXPECT_OK(&api, api.load_plugin(core, onnx_plugin_path(), NULL, "{\"intra_op_threads\":1}"));
    EXPECT_OK(&api, api.register_model(core, "mlp", "onnx-runtime", path, "{\"framework\":\"onnx\"}"));
    if (load) EXPECT_OK(&api, api.load_model(core, "mlp"));
}

void item_shape_overflow(void) {
    hostile_lib_t lib;
    mlos_core_t* core = core_with_hostile(0, &lib);
    EXPECT_OK(&api, api.load_plugin(core, echo_path(), NULL, "test-config"));
    EXPECT_OK(&api, api.register_model(core, "echo-batched", "csharp-echo", NULL,
                                       "{\"dynamic_batching\":{\"max_batch_size\":8,\"max_queue_delay_us\":0}}"));
    EXPECT_OK(&api, api.load_model(core, "echo-batched"));
    expect_shape_refused(core, "echo-batched", "input_0");
    register_onnx_mlp(core, 1);
    expect_shape_refused(core, "mlp", "input");
    add_hostile(core, "h", "hostile", "", 0);
    add_hostile(core, "h-batched", "hostile", "", 1);
    expect_shape_refused(core, "h", "x");
    expect_shape_refused(core, "h-batched", "x");
    CHECK(hostile_read(&lib).infer_calls == 0, "a shape whose product overflows reached the plugin");
    destroy(core);
}

/* ------------------------------------------------------------------ 9: model_info before load; the echo plugin direct */

void item_onnx_info_unloaded(void) {
    static char json[1 << 16];
    mlos_core_t* core = NULL;
    size_t size = sizeof json;
    EXPECT_OK(&api, api.create(NULL, &core));
    register_onnx_mlp(core, 0);
    phase("model_info on a registered, unloaded ONNX model");
    EXPECT_OK(&api, api.model_info(core, "mlp", json, &size));
    EXPECT_OK(&api, api.load_model(core, "mlp"));
    size = sizeof json;
    EXPECT_OK(&api, api.model_info(core, "mlp", json, &size));
    CHECK(strstr(json, "\"inputs\"") != NULL, "a loaded mlp has no input specs: %.300s", json);
    destroy(core);
}

static void release_all(smi_tensor_t* outputs, size_t n) {
    size_t i;
    for (i = 0; i < n; i++)
        if (outputs[i].release) outputs[i].release(&outputs[i]);
}

/* One malformed input straight into the echo plugin's infer: INVALID_PARAM, not RUNTIME, no crash. */
static void expect_echo_refuses(smi_plugin_t* echo, smi_model_handle_t handle, smi_tensor_t input, const char* what) {
    smi_tensor_t outputs[2];
    size_t n = 2;
    int status;
    memset(outputs, 0, sizeof outputs);
    phase(what);
    status = echo->v1_1.infer(handle, &input, 1, outputs, &n);
    EXPECT_PLUGIN_STATUS(echo, status, SMI_ERROR_INVALID_PARAM, (const char*)NULL);
    if (status == SMI_SUCCESS) release_all(outputs, 2);
}

static smi_model_handle_t echo_register(smi_plugin_t* echo, const char* name) {
    smi_model_metadata_t metadata = {name, "", NULL, NULL, NULL};
    smi_model_handle_t handle = NULL;
    EXPECT_PLUGIN_STATUS(echo, echo->interface.register_model(&metadata, &handle), SMI_SUCCESS, (const char*)NULL);
    return handle;
}

static void expect_escaped_info(smi_plugin_t* echo) {
    static const char* const id = "a\",\"x\":\"1";
    smi_model_handle_t handle = echo_register(echo, id);
    char info[4096];
    size_t size = sizeof info;
    phase("get_model_info of a model whose id holds quotes");
    EXPECT_PLUGIN_STATUS(echo, echo->interface.get_model_info(handle, info, &size), SMI_SUCCESS, (const char*)NULL);
    CHECK(strstr(info, "a\\\",\\\"x\\\":\\\"1") != NULL, "the id is not escaped in %s", info);
    CHECK(strstr(info, "\"x\":\"1\"") == NULL, "the id injected a key into %s", info);
    echo->interface.unregister_model(handle);
}

void item_echo_direct(void) {
    smi_plugin_t* echo = mlos_open_plugin(echo_path());
    smi_model_handle_t handle;
    float x[4] = {1, 2, 3, 4};
    smi_tensor_t input = fp32_tensor("values", x, 1, 4), bad;
    EXPECT_PLUGIN_STATUS(echo, echo->interface.initialize(NULL), SMI_SUCCESS, (const char*)NULL);
    handle = echo_register(echo, "direct");
    EXPECT_PLUGIN_STATUS(echo, echo->interface.load_model(handle, NULL), SMI_SUCCESS, (const char*)NULL);
    bad = input, bad.dtype = (smi_dtype_t)99;
    expect_echo_refuses(echo, handle, bad, "dtype 99");
    bad = input, bad.name = NULL;
    expect_echo_refuses(echo, handle, bad, "NULL input name");
    bad = input, bad.byte_size = 8;
    expect_echo_refuses(echo, handle, bad, "byte_size 8 for [1,4] FP32");
    bad = input, bad.shape[1] = -4;
    expect_echo_refuses(echo, handle, bad, "negative dim");
    expect_escaped_info(echo);
    echo->interface.unregister_model(handle);
    if (echo->interface.cleanup) echo->interface.cleanup();
}
