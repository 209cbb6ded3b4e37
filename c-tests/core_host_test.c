/* A C host driving libmlos_core.so through dlopen: the guide's C plugin and the C# echo plugin
 * (NativeAOT, built on the Mlos.Smi SDK), inference from 8 threads, unload under load, and
 * every refusal and error path of the host API with its status and message. */
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "test_support.h"

#define THREADS 8
#define ITERATIONS 2000

static mlos_api_t api;
static const char* build_dir;

static const char* at(const char* relative) {
    static char buffer[8][4096];
    static int next;
    next = (next + 1) % 8;
    return mlos_path(buffer[next], sizeof buffer[next], build_dir, relative);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void test_versions(void) {
    CHECK(api.version() == MLOS_CORE_VERSION, "core version 0x%x", api.version());
    CHECK(SMI_VERSION_GET_MAJOR(api.smi_version()) == SMI_VERSION_MAJOR, "smi version 0x%x", api.smi_version());
}

static void test_create_errors(void) {
    mlos_core_t* core = NULL;
    EXPECT_STATUS(&api, api.create(NULL, NULL), SMI_ERROR_INVALID_PARAM, "must not be NULL");
    EXPECT_STATUS(&api, api.create("{not json", &core), SMI_ERROR_INVALID_PARAM, "not valid JSON");
    CHECK(core == NULL, "a failed create must leave *core untouched");
    EXPECT_STATUS(&api, api.create("{\"plugin\":[]}", &core), SMI_ERROR_INVALID_PARAM, "unknown key 'plugin'");
    EXPECT_STATUS(&api, api.create("{\"plugins\":[{\"id\":\"x\"}]}", &core), SMI_ERROR_INVALID_PARAM, "no 'path'");
    EXPECT_STATUS(&api, api.destroy(NULL), SMI_ERROR_INVALID_PARAM, "core must not be NULL");
    EXPECT_STATUS(&api, api.destroy((mlos_core_t*)(uintptr_t)0xdead0), SMI_ERROR_INVALID_PARAM, "unknown or destroyed core");
    EXPECT_STATUS(&api, api.load_plugin((mlos_core_t*)(uintptr_t)0xdead0, "x.so", NULL, NULL), SMI_ERROR_INVALID_PARAM,
                  "unknown or destroyed core");
}

static void test_plugin_refusals(mlos_core_t* core) {
    EXPECT_STATUS(&api, api.load_plugin(core, NULL, NULL, NULL), SMI_ERROR_INVALID_PARAM, "path must not be NULL");
    EXPECT_STATUS(&api, api.load_plugin(core, at("c-tests/plugins/nope.so"), NULL, NULL), SMI_ERROR_NOT_FOUND,
                  "plugin file not found");
    EXPECT_STATUS(&api, api.load_plugin(core, at("c-tests/plugins/libmlos_no_entry.so"), NULL, NULL), SMI_ERROR_NOT_FOUND,
                  "does not export smi_plugin_init");
    EXPECT_STATUS(&api, api.load_plugin(core, at("c-tests/plugins/libmlos_bad_major_plugin.so"), NULL, NULL),
                  SMI_ERROR_VERSION_MISMATCH, "built for SMI 2.0.0");
    EXPECT_STATUS(&api, api.load_plugin(core, at("c-tests/plugins/libmlos_bad_null_entry_plugin.so"), NULL, NULL),
                  SMI_ERROR_INVALID_PARAM, "required entry 'inference' NULL");
    EXPECT_STATUS(&api, api.load_plugin(core, at("c-tests/plugins/libmlos_bad_init_plugin.so"), NULL, NULL),
                  SMI_ERROR_RUNTIME, "initialize failed");
    /* A library that is not even an ELF file: the caller named the wrong file. */
    EXPECT_STATUS(&api, api.load_plugin(core, at("CMakeCache.txt"), NULL, NULL), SMI_ERROR_INVALID_PARAM, "invalid ELF header");
    /* Nothing of the refused plugins stayed registered. */
    {
        char json[4096];
        size_t size = sizeof json;
        EXPECT_OK(&api, api.list_plugins(core, json, &size));
        CHECK(strstr(json, "bad-plugin") == NULL, "a refused plugin is listed: %s", json);
    }
}

static void test_guide_plugin(mlos_core_t* core) {
    unsigned char input[64], output[64];
    size_t size = sizeof output, i;
    smi_tensor_t in_tensor, out_tensor;
    size_t num_outputs = 1;

    EXPECT_OK(&api, api.load_plugin(core, at("c-tests/plugins/libmlos_guide_plugin.so"), NULL, "test-config"));
    EXPECT_STATUS(&api, api.load_plugin(core, at("c-tests/plugins/libmlos_guide_c_plugin.so"), "my-ml-plugin", NULL),
                  SMI_ERROR_ALREADY_EXISTS, "'my-ml-plugin' is already loaded");
    EXPECT_STATUS(&api, api.load_plugin(core, at("c-tests/plugins/libmlos_guide_plugin.so"), "again", NULL),
                  SMI_ERROR_ALREADY_EXISTS, "is already loaded as 'my-ml-plugin'");

    EXPECT_OK(&api, api.register_model(core, "guide-echo", "my-ml-plugin", "./models/test_model.bin", NULL));
    /* The guide's plugin leaves load_model NULL: the core treats that as "no load step needed". */
    EXPECT_OK(&api, api.load_model(core, "guide-echo"));
    for (i = 0; i < sizeof input; i++) input[i] = (unsigned char)(i * 7 + 1);
    EXPECT_OK(&api, api.inference(core, "guide-echo", input, sizeof input, output, &size));
    CHECK(size == sizeof input && memcmp(input, output, size) == 0, "guide echo returned %zu bytes", size);

    /* SMI 1.0 semantics: no typed infer, no model I/O. */
    memset(&in_tensor, 0, sizeof in_tensor);
    memset(&out_tensor, 0, sizeof out_tensor);
    in_tensor.name = "x";
    in_tensor.dtype = SMI_DTYPE_UINT8;
    in_tensor.ndim = 1;
    in_tensor.shape[0] = 64;
    in_tensor.data = input;
    in_tensor.byte_size = sizeof input;
    EXPECT_STATUS(&api, api.infer(core, "guide-echo", &in_tensor, 1, &out_tensor, &num_outputs), SMI_ERROR_NOT_SUPPORTED,
                  "has no typed infer");
}

static void test_echo_plugin(mlos_core_t* core) {
    char input[100] = "hello from a C host";
    char small[4], output[128];
    size_t size;
    float values[6] = {1, 2, 3, 4, 5, 6};
    float into[6] = {0};
    int64_t ids[3] = {7, 8, 9};
    smi_tensor_t inputs[2], outputs[2];
    size_t num_outputs;
    char json[8192];

    EXPECT_OK(&api, api.register_model(core, "echo", "csharp-echo", NULL, "{\"framework\":\"echo\",\"version\":\"1\"}"));
    /* Inference before load: the model exists but is not loaded. */
    size = sizeof output;
    EXPECT_STATUS(&api, api.inference(core, "echo", input, sizeof input, output, &size), SMI_ERROR_INVALID_STATE,
                  "is registered, not loaded");
    EXPECT_OK(&api, api.load_model(core, "echo"));
    EXPECT_OK(&api, api.load_model(core, "echo")); /* idempotent */

    size = sizeof output;
    EXPECT_OK(&api, api.inference(core, "echo", input, sizeof input, output, &size));
    CHECK(size == sizeof input && memcmp(input, output, size) == 0, "echo returned %zu bytes", size);

    /* Output too small: the plugin says so and how much it needs. */
    size = sizeof small;
    EXPECT_STATUS(&api, api.inference(core, "echo", input, sizeof input, small, &size), SMI_ERROR_BUFFER_TOO_SMALL,
                  "100 bytes needed, 4 given");
    CHECK(size == sizeof input, "needed size reported as %zu", size);

    /* Argument validation in the core. */
    size = sizeof output;
    EXPECT_STATUS(&api, api.inference(core, NULL, input, 1, output, &size), SMI_ERROR_INVALID_PARAM, "model_id must not be NULL");
    EXPECT_STATUS(&api, api.inference(core, "echo", input, 1, output, NULL), SMI_ERROR_INVALID_PARAM, "output_size must not be NULL");
    EXPECT_STATUS(&api, api.inference(core, "echo", NULL, 5, output, &size), SMI_ERROR_INVALID_PARAM, "input is NULL");
    EXPECT_STATUS(&api, api.inference(core, "nope", input, 1, output, &size), SMI_ERROR_NOT_FOUND, "no model with id 'nope'");

    /* Typed infer: one output into a caller buffer, one allocated by the plugin. */
    memset(inputs, 0, sizeof inputs);
    memset(outputs, 0, sizeof outputs);
    inputs[0].name = "values";
    inputs[0].dtype = SMI_DTYPE_FP32;
    inputs[0].ndim = 2;
    inputs[0].shape[0] = 2;
    inputs[0].shape[1] = 3;
    inputs[0].data = values;
    inputs[0].byte_size = sizeof values;
    inputs[1].name = "ids";
    inputs[1].dtype = SMI_DTYPE_INT64;
    inputs[1].ndim = 1;
    inputs[1].shape[0] = 3;
    inputs[1].data = ids;
    inputs[1].byte_size = sizeof ids;
    outputs[0].data = into;
    outputs[0].byte_size = sizeof into;
    num_outputs = 2;
    EXPECT_OK(&api, api.infer(core, "echo", inputs, 2, outputs, &num_outputs));
    CHECK(num_outputs == 2, "num_outputs %zu", num_outputs);
    CHECK(memcmp(into, values, sizeof values) == 0 && outputs[0].release == NULL, "caller-buffer output wrong");
    CHECK(outputs[0].ndim == 2 && outputs[0].shape[1] == 3 && outputs[0].dtype == SMI_DTYPE_FP32, "output 0 spec wrong");
    CHECK(outputs[1].release != NULL && outputs[1].data != NULL && memcmp(outputs[1].data, ids, sizeof ids) == 0,
          "plugin-allocated output wrong");
    CHECK(outputs[1].name && strcmp(outputs[1].name, "output_1") == 0, "output name %s", outputs[1].name);
    api.release_outputs(outputs, num_outputs);
    CHECK(outputs[1].data == NULL && outputs[1].release == NULL, "release did not clear the output");

    /* Typed infer errors: too few output slots, too small a caller buffer. */
    memset(outputs, 0, sizeof outputs);
    num_outputs = 1;
    EXPECT_STATUS(&api, api.infer(core, "echo", inputs, 2, outputs, &num_outputs), SMI_ERROR_BUFFER_TOO_SMALL,
                  "outputs array too small");
    CHECK(num_outputs == 2, "needed output count reported as %zu", num_outputs);
    memset(outputs, 0, sizeof outputs);
    outputs[0].data = into;
    outputs[0].byte_size = 4;
    num_outputs = 2;
    EXPECT_STATUS(&api, api.infer(core, "echo", inputs, 2, outputs, &num_outputs), SMI_ERROR_BUFFER_TOO_SMALL,
                  "24 bytes needed, 4 given");

    /* Resource requests reach the plugin; the guide's plugin has no such entry. */
    {
        smi_resource_req_t threads = {SMI_RESOURCE_CPU_THREADS, 0, 3}, gpu = {SMI_RESOURCE_GPU, 0, 0};
        EXPECT_OK(&api, api.allocate_resources(core, "echo", &threads, 1));
        EXPECT_STATUS(&api, api.allocate_resources(core, "echo", &gpu, 1), SMI_ERROR_NOT_SUPPORTED, "cannot honour a Gpu request");
        EXPECT_STATUS(&api, api.allocate_resources(core, "guide-echo", &threads, 1), SMI_ERROR_NOT_SUPPORTED,
                      "does not take resource requests");
        EXPECT_OK(&api, api.deallocate_resources(core, "guide-echo"));
    }

    /* Registry errors. */
    EXPECT_STATUS(&api, api.register_model(core, "echo", "csharp-echo", NULL, NULL), SMI_ERROR_ALREADY_EXISTS,
                  "'echo' is already registered");
    EXPECT_STATUS(&api, api.register_model(core, "x", "no-such-plugin", NULL, NULL), SMI_ERROR_NOT_FOUND,
                  "no plugin with id 'no-such-plugin'");
    EXPECT_STATUS(&api, api.register_model(core, "x", "csharp-echo", NULL, "{\"framework\":"), SMI_ERROR_INVALID_PARAM,
                  "model options is not valid JSON");
    EXPECT_STATUS(&api, api.register_model(core, "", "csharp-echo", NULL, NULL), SMI_ERROR_INVALID_PARAM,
                  "model id must not be empty");
    EXPECT_STATUS(&api, api.load_model(core, "nope"), SMI_ERROR_NOT_FOUND, "no model with id 'nope'");
    EXPECT_STATUS(&api, api.unregister_model(core, NULL), SMI_ERROR_INVALID_PARAM, "model_id must not be NULL");

    /* JSON views, including the size protocol. */
    size = 8;
    EXPECT_STATUS(&api, api.list_models(core, json, &size), SMI_ERROR_BUFFER_TOO_SMALL, "buffer too small");
    CHECK(size > 8, "needed size %zu", size);
    size = sizeof json;
    EXPECT_OK(&api, api.list_models(core, json, &size));
    CHECK(strstr(json, "\"id\":\"echo\"") && strstr(json, "\"plugin_id\":\"csharp-echo\"") &&
              strstr(json, "\"status\":\"loaded\""), "models: %s", json);
    size = sizeof json;
    EXPECT_OK(&api, api.list_plugins(core, json, &size));
    CHECK(strstr(json, "\"id\":\"csharp-echo\"") && strstr(json, "\"thread_safe\"") && strstr(json, "\"id\":\"my-ml-plugin\""),
          "plugins: %s", json);
    size = sizeof json;
    EXPECT_OK(&api, api.model_info(core, "echo", json, &size));
    CHECK(strstr(json, "\"inputs\"") && strstr(json, "\"plugin_info\"") && strstr(json, "\"loaded\":true"), "info: %s", json);
}

typedef struct {
    mlos_core_t* core;
    const char* model;
    int index;
    int failures;
} worker_t;

static void* inference_worker(void* arg) {
    worker_t* w = (worker_t*)arg;
    unsigned char input[256], output[256];
    int it;
    size_t i;
    for (it = 0; it < ITERATIONS; it++) {
        size_t size = sizeof output;
        for (i = 0; i < sizeof input; i++) input[i] = (unsigned char)(w->index * 31 + it + i);
        if (api.inference(w->core, w->model, input, sizeof input, output, &size) != SMI_SUCCESS ||
            size != sizeof input || memcmp(input, output, size) != 0)
            w->failures++;
    }
    return NULL;
}

static void test_threads(mlos_core_t* core, const char* model) {
    pthread_t threads[THREADS];
    worker_t workers[THREADS];
    int t, failures = 0;
    for (t = 0; t < THREADS; t++) {
        workers[t].core = core;
        workers[t].model = model;
        workers[t].index = t;
        workers[t].failures = 0;
        pthread_create(&threads[t], NULL, inference_worker, &workers[t]);
    }
    for (t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        failures += workers[t].failures;
    }
    CHECK(failures == 0, "%d of %d inferences on '%s' from %d threads failed", failures, THREADS * ITERATIONS, model, THREADS);
}

typedef struct {
    mlos_core_t* core;
    int failures;
} probe_worker_t;

static void* probe_through_core(void* arg) {
    probe_worker_t* w = (probe_worker_t*)arg;
    int i, seen;
    for (i = 0; i < 200; i++) {
        size_t size = sizeof seen;
        if (api.inference(w->core, "probe", "x", 1, &seen, &size) != SMI_SUCCESS) w->failures++;
    }
    return NULL;
}

/* A plugin without SMI_CAP_THREAD_SAFE never sees two calls at once through the core. */
static void test_serialised_plugin(mlos_core_t* core) {
    pthread_t threads[THREADS];
    probe_worker_t workers[THREADS];
    int t, failures = 0;
    EXPECT_OK(&api, api.load_plugin(core, at("c-tests/plugins/libmlos_serial_probe_plugin.so"), NULL, NULL));
    EXPECT_OK(&api, api.register_model(core, "probe", "serial-probe", NULL, NULL));
    EXPECT_OK(&api, api.load_model(core, "probe"));
    for (t = 0; t < THREADS; t++) {
        workers[t].core = core;
        workers[t].failures = 0;
        pthread_create(&threads[t], NULL, probe_through_core, &workers[t]);
    }
    for (t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        failures += workers[t].failures;
    }
    CHECK(failures == 0, "%d calls into the non-thread-safe plugin overlapped another", failures);
    EXPECT_OK(&api, api.unregister_model(core, "probe"));
}

typedef struct {
    mlos_core_t* core;
    int status;
    double finished_ms;
} slow_call_t;

static void* slow_inference(void* arg) {
    slow_call_t* c = (slow_call_t*)arg;
    char in[16] = "slow", out[16];
    size_t size = sizeof out;
    c->status = api.inference(c->core, "slow", in, sizeof in, out, &size);
    c->finished_ms = now_ms();
    return NULL;
}

static void* unload_slow(void* core) {
    api.unload_model((mlos_core_t*)core, "slow");
    return NULL;
}

/* Unload waits for the request in flight, and a request that arrives meanwhile is refused
 * with BUSY rather than run on a model being released. */
static void test_unload_under_load(mlos_core_t* core) {
    pthread_t thread;
    slow_call_t call = {core, -100, 0};
    char in[16] = "late", out[16];
    size_t size = sizeof out;
    double started, unloaded;

    EXPECT_OK(&api, api.register_model(core, "slow", "csharp-echo", NULL, "{\"config\":{\"delay_us\":300000}}"));
    EXPECT_OK(&api, api.load_model(core, "slow"));
    started = now_ms();
    pthread_create(&thread, NULL, slow_inference, &call);
    usleep(100000);
    EXPECT_OK(&api, api.unload_model(core, "slow"));
    unloaded = now_ms();
    pthread_join(thread, NULL);
    CHECK(call.status == SMI_SUCCESS, "the request in flight failed with %d", call.status);
    CHECK(unloaded - started >= 250, "unload returned after %.0f ms, before the 300 ms request could finish",
          unloaded - started);
    EXPECT_STATUS(&api, api.inference(core, "slow", in, sizeof in, out, &size), SMI_ERROR_INVALID_STATE, "not loaded");

    /* A request that arrives while unload drains gets BUSY. */
    EXPECT_OK(&api, api.load_model(core, "slow"));
    pthread_create(&thread, NULL, slow_inference, &call);
    usleep(50000);
    {
        pthread_t unloader;
        pthread_create(&unloader, NULL, unload_slow, core);
        usleep(100000);
        size = sizeof out;
        EXPECT_STATUS(&api, api.inference(core, "slow", in, sizeof in, out, &size), SMI_ERROR_BUSY, "is unloading");
        pthread_join(unloader, NULL);
    }
    pthread_join(thread, NULL);
    CHECK(call.status == SMI_SUCCESS, "the request in flight failed with %d", call.status);
    EXPECT_OK(&api, api.unregister_model(core, "slow"));
}

typedef struct {
    int status;
    char message[256];
} error_probe_t;

static void* fail_on_other_thread(void* arg) {
    error_probe_t* p = (error_probe_t*)arg;
    p->status = api.load_model((mlos_core_t*)(uintptr_t)0xbad0, "x");
    snprintf(p->message, sizeof p->message, "%s", api.last_error() ? api.last_error() : "");
    return NULL;
}

static void test_last_error_is_per_thread(mlos_core_t* core) {
    pthread_t thread;
    error_probe_t probe;
    EXPECT_STATUS(&api, api.load_model(core, "first-thread-model"), SMI_ERROR_NOT_FOUND, "first-thread-model");
    pthread_create(&thread, NULL, fail_on_other_thread, &probe);
    pthread_join(thread, NULL);
    CHECK(strstr(probe.message, "unknown or destroyed core") != NULL, "other thread saw: %s", probe.message);
    CHECK(strstr(api.last_error(), "first-thread-model") != NULL, "this thread's error was replaced: %s", api.last_error());
}

static void test_destroy(mlos_core_t* core) {
    mlos_core_t* second = NULL;
    char config[8192];
    EXPECT_OK(&api, api.unregister_model(core, "echo"));
    EXPECT_STATUS(&api, api.unregister_model(core, "echo"), SMI_ERROR_NOT_FOUND, "no model with id 'echo'");
    EXPECT_OK(&api, api.destroy(core));
    EXPECT_STATUS(&api, api.destroy(core), SMI_ERROR_INVALID_PARAM, "unknown or destroyed core");
    EXPECT_STATUS(&api, api.load_model(core, "guide-echo"), SMI_ERROR_INVALID_PARAM, "unknown or destroyed core");
    /* The plugins are free again: a new core loads them from its JSON config. */
    snprintf(config, sizeof config, "{\"plugins\":[{\"path\":\"%s\",\"config\":\"test-config\"}]}",
             at("plugins/libmlos_echo_plugin.so"));
    EXPECT_OK(&api, api.create(config, &second));
    EXPECT_OK(&api, api.destroy(second));
}

int main(int argc, char** argv) {
    mlos_core_t* core = NULL;
    if (argc != 2) {
        fprintf(stderr, "usage: %s <build-dir>\n", argv[0]);
        return 2;
    }
    build_dir = argv[1];
    mlos_api_load(&api, build_dir);

    test_versions();
    test_create_errors();
    EXPECT_OK(&api, api.create(NULL, &core));
    test_plugin_refusals(core);
    test_guide_plugin(core);
    EXPECT_OK(&api, api.load_plugin(core, at("plugins/libmlos_echo_plugin.so"), NULL, "test-config"));
    test_echo_plugin(core);
    test_threads(core, "guide-echo");
    test_threads(core, "echo");
    test_serialised_plugin(core);
    test_unload_under_load(core);
    test_last_error_is_per_thread(core);
    test_destroy(core);

    if (mlos_test_failures) {
        fprintf(stderr, "core_host_test: %d check(s) failed\n", mlos_test_failures);
        return 1;
    }
    printf("core_host_test: all checks passed\n");
    return 0;
}
