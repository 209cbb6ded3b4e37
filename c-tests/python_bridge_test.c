/* The Python bridge (libmlos_python_plugin.so) seen from C, without the core: the guide's
 * protocol through the sample class, typed tensors as numpy arrays, many host threads, and every
 * way a Python plugin can break the protocol (c-tests/python/faulty_python_plugin.py).
 *   python_bridge_test <bridge.so> <c-tests/python> <affine.json>   (affine: y = 2.5x - 1) */
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "test_support.h"

static smi_plugin_t* plugin;
static const smi_plugin_interface_t* api;
static char config[4096];

#define EXPECT_PLUGIN(expr, status, needle) EXPECT_PLUGIN_STATUS(plugin, expr, status, needle)
#define OK(expr) EXPECT_PLUGIN(expr, SMI_SUCCESS, (const char*)NULL)

static const char* python_config(const char* dir, const char* module, const char* cls) {
    snprintf(config, sizeof config, "{\"module\": \"%s\", \"class\": \"%s\", \"path\": \"%s\"}", module, cls, dir);
    return config;
}

static smi_model_handle_t add_model(const char* name, const char* framework, const char* path) {
    smi_model_metadata_t m = {name, framework, "1", path, NULL};
    smi_model_handle_t h = NULL;
    OK(api->register_model(&m, &h));
    return h;
}

static const float scale = 2.5f, bias = -1.0f;
static smi_model_handle_t echo_model, affine_model;

/* Each thread runs both models and checks every answer. */
static void* hammer(void* arg) {
    uintptr_t seed = (uintptr_t)arg;
    for (int i = 0; i < 300; i++) {
        float x[16], y[16];
        size_t size = sizeof y;
        unsigned char in[64], out[64];
        for (int k = 0; k < 16; k++) x[k] = (float)(seed * 1000 + i + k);
        if (api->inference(affine_model, x, sizeof x, y, &size) != SMI_SUCCESS || size != sizeof y) {
            CHECK(0, "thread %lu: affine inference failed: %s", (unsigned long)seed, plugin->v1_1.get_last_error());
            return NULL;
        }
        for (int k = 0; k < 16; k++) CHECK(y[k] == scale * x[k] + bias, "thread %lu: y[%d]=%g", (unsigned long)seed, k, y[k]);
        for (int k = 0; k < 64; k++) in[k] = (unsigned char)(seed + i + k);
        size = sizeof out;
        CHECK(api->inference(echo_model, in, sizeof in, out, &size) == SMI_SUCCESS && size == 64 && memcmp(in, out, 64) == 0,
              "thread %lu: echo", (unsigned long)seed);
    }
    return NULL;
}

static void test_sample(const char* dir, const char* affine_path) {
    float x[5] = {0, 1, -2, 3.5f, 100}, y[5];
    unsigned char payload[64], out[64];
    size_t size, n_in = 2, n_out = 2;
    char info[256];
    smi_tensor_spec_t in_specs[2], out_specs[2];
    smi_tensor_t input = {"x", SMI_DTYPE_FP32, 1, {5}, x, sizeof x, SMI_MEMORY_CPU, 0, NULL, NULL};
    smi_tensor_t outputs[1];
    pthread_t threads[8];

    OK(api->initialize(python_config(dir, "my_python_plugin", "MyPythonPlugin")));
    CHECK(strcmp(api->get_plugin_name(), "My Python ML Plugin") == 0, "name %s", api->get_plugin_name());
    CHECK(strcmp(api->get_plugin_version(), "1.0.0") == 0, "version %s", api->get_plugin_version());
    CHECK(strcmp(api->get_supported_frameworks(), "echo,affine,numpy") == 0, "frameworks %s", api->get_supported_frameworks());
    EXPECT_PLUGIN(api->initialize(config), SMI_ERROR_INVALID_STATE, "already serves my_python_plugin.MyPythonPlugin");

    echo_model = add_model("echo", "echo", affine_path);
    affine_model = add_model("affine", "affine", affine_path);
    OK(api->load_model(echo_model, NULL));
    OK(api->load_model(affine_model, NULL));

    /* Untyped: the guide's (bytes, status) protocol. */
    for (int i = 0; i < 64; i++) payload[i] = (unsigned char)(i * 7);
    size = sizeof out;
    OK(api->inference(echo_model, payload, sizeof payload, out, &size));
    CHECK(size == 64 && memcmp(payload, out, 64) == 0, "echo returned %zu bytes", size);
    size = sizeof y;
    OK(api->inference(affine_model, x, sizeof x, y, &size));
    CHECK(size == sizeof y, "affine returned %zu bytes", size);
    for (int k = 0; k < 5; k++) CHECK(y[k] == scale * x[k] + bias, "y[%d]=%g", k, y[k]);
    size = 8;
    EXPECT_PLUGIN(api->inference(affine_model, x, sizeof x, y, &size), SMI_ERROR_BUFFER_TOO_SMALL, "20 bytes needed, 8 given");
    CHECK(size == sizeof y, "too small: size needed %zu", size);
    size = sizeof y;
    EXPECT_PLUGIN(api->inference(affine_model, x, 3, y, &size), SMI_ERROR_INVALID_PARAM, "returned status SMI_ERROR_INVALID_PARAM");
    size = sizeof y;
    EXPECT_PLUGIN(api->inference((smi_model_handle_t)(uintptr_t)0x999, x, sizeof x, y, &size), SMI_ERROR_NOT_FOUND, "unknown model handle");

    /* Typed: numpy arrays over our memory, outputs handed over or written into our buffer. */
    OK(plugin->v1_1.get_model_io(affine_model, in_specs, &n_in, out_specs, &n_out));
    CHECK(n_in == 1 && n_out == 1 && strcmp(in_specs[0].name, "x") == 0 && in_specs[0].dtype == SMI_DTYPE_FP32 &&
          in_specs[0].ndim == 1 && in_specs[0].shape[0] == -1 && strcmp(out_specs[0].name, "y") == 0,
          "model io: %zu inputs, %zu outputs", n_in, n_out);
    memset(outputs, 0, sizeof outputs);
    n_out = 1;
    OK(plugin->v1_1.infer(affine_model, &input, 1, outputs, &n_out));
    CHECK(n_out == 1 && outputs[0].release != NULL && outputs[0].dtype == SMI_DTYPE_FP32 && outputs[0].ndim == 1 &&
          outputs[0].shape[0] == 5 && outputs[0].byte_size == sizeof y && strcmp(outputs[0].name, "y") == 0,
          "typed output: n=%zu ndim=%u bytes=%zu", n_out, outputs[0].ndim, outputs[0].byte_size);
    for (int k = 0; k < 5 && outputs[0].data; k++)
        CHECK(((float*)outputs[0].data)[k] == scale * x[k] + bias, "typed y[%d]", k);
    if (outputs[0].release) outputs[0].release(&outputs[0]);
    memset(outputs, 0, sizeof outputs);
    memset(y, 0, sizeof y);
    outputs[0].data = y;
    outputs[0].byte_size = sizeof y;
    n_out = 1;
    OK(plugin->v1_1.infer(affine_model, &input, 1, outputs, &n_out));
    CHECK(outputs[0].release == NULL && y[4] == scale * x[4] + bias, "typed into the caller's buffer: %g", y[4]);
    size = sizeof info;
    OK(api->get_model_info(affine_model, info, &size));
    CHECK(strstr(info, "\"framework\": \"affine\"") != NULL, "model info %s", info);

    /* Many host threads Python has never seen, at once. */
    for (uintptr_t t = 0; t < 8; t++) pthread_create(&threads[t], NULL, hammer, (void*)(t + 1));
    for (int t = 0; t < 8; t++) pthread_join(threads[t], NULL);

    OK(api->unload_model(affine_model));
    size = sizeof y;
    EXPECT_PLUGIN(api->inference(affine_model, x, sizeof x, y, &size), SMI_ERROR_NOT_FOUND, "SMI_ERROR_NOT_FOUND");
    OK(api->unregister_model(affine_model));
    OK(api->cleanup());
    size = sizeof out;
    EXPECT_PLUGIN(api->inference(echo_model, payload, 4, out, &size), SMI_ERROR_NOT_FOUND, (const char*)NULL);
}

static void test_protocol_errors(const char* dir) {
    unsigned char data[7] = "payload", out[16];
    float x[3] = {1, 2, 3};
    size_t size;
    smi_model_handle_t h;
    smi_model_metadata_t refused = {"refuse-register", "", NULL, NULL, NULL};
    smi_tensor_t input = {"x", SMI_DTYPE_FP32, 1, {3}, x, sizeof x, SMI_MEMORY_CPU, 0, NULL, NULL};
    smi_tensor_t outputs[2];
    size_t n_out;

    EXPECT_PLUGIN(api->initialize(python_config(dir, "no_such_module", "X")), SMI_ERROR_NOT_FOUND,
                  "Python module 'no_such_module' not found");
    EXPECT_PLUGIN(api->initialize(python_config(dir, "my_python_plugin", "NoSuchClass")), SMI_ERROR_NOT_FOUND,
                  "has no class 'NoSuchClass'");
    EXPECT_PLUGIN(api->initialize("{\"module\": 42}"), SMI_ERROR_INVALID_PARAM, "\"module\" must be a string");
    EXPECT_PLUGIN(api->initialize("{\"module\": \"os; rm\"}"), SMI_ERROR_INVALID_PARAM, "must be a Python name");
    EXPECT_PLUGIN(api->initialize("{not json"), SMI_ERROR_INVALID_PARAM, "not valid JSON");
    OK(api->initialize(python_config(dir, "faulty_python_plugin", "FaultyPlugin")));
    CHECK(strcmp(api->get_plugin_name(), "Faulty Python Plugin") == 0, "name %s", api->get_plugin_name());
    CHECK(strcmp(api->get_plugin_version(), "0.0.0") == 0, "a missing get_plugin_version: %s", api->get_plugin_version());

    EXPECT_PLUGIN(api->register_model(&refused, &h), SMI_ERROR_ALREADY_EXISTS,
                  "register_model() returned status SMI_ERROR_ALREADY_EXISTS (-8)");
    h = add_model("raise-on-load", "", "/models/w.bin");
    EXPECT_PLUGIN(api->load_model(h, NULL), SMI_ERROR_RUNTIME, "FileNotFoundError: no weights at /models/w.bin");

    struct { const char* model; int status; const char* error; } cases[] = {
        {"raise", SMI_ERROR_RUNTIME, "ValueError: bad input of 7 bytes (at "},
        {"wrong-type", SMI_ERROR_RUNTIME, "inference() returned int; expected (bytes, status) or bytes"},
        {"wrong-tuple", SMI_ERROR_RUNTIME, "inference() returned str; expected (bytes, status) or bytes"},
        {"wrong-status", SMI_ERROR_RUNTIME, "returned status 7, which is not an SMI status"},
        {"not-found-status", SMI_ERROR_NOT_FOUND, "inference() returned status SMI_ERROR_NOT_FOUND (-3)"},
    };
    smi_model_handle_t good = add_model("good", "", NULL);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        h = add_model(cases[c].model, "", NULL);
        OK(api->load_model(h, NULL));
        size = sizeof out;
        EXPECT_PLUGIN(api->inference(h, data, sizeof data, out, &size), cases[c].status, cases[c].error);
        /* ...and the plugin stays usable. */
        size = sizeof out;
        OK(api->inference(good, data, sizeof data, out, &size));
        CHECK(size == sizeof data && memcmp(out, data, size) == 0, "after %s: good model answers", cases[c].model);
    }
    h = add_model("plain-bytes", "", NULL);
    size = sizeof out;
    OK(api->inference(h, data, sizeof data, out, &size));
    CHECK(size == 7 && out[0] == 'd' && out[6] == 'p', "plain bytes accepted: %.*s", (int)size, out);

    /* Typed infer: a kept input, an output numpy cannot give SMI, an exception, a list answer. */
    h = add_model("keep-input", "", NULL);
    memset(outputs, 0, sizeof outputs);
    n_out = 2;
    EXPECT_PLUGIN(plugin->v1_1.infer(h, &input, 1, outputs, &n_out), SMI_ERROR_RUNTIME, "kept input 'x' after returning");
    CHECK(outputs[0].release == NULL, "a failed infer leaves no output allocated");
    h = add_model("bad-dtype", "", NULL);
    memset(outputs, 0, sizeof outputs);
    n_out = 2;
    EXPECT_PLUGIN(plugin->v1_1.infer(h, &input, 1, outputs, &n_out), SMI_ERROR_RUNTIME, "which SMI cannot carry");
    h = add_model("raise", "", NULL);
    memset(outputs, 0, sizeof outputs);
    n_out = 2;
    EXPECT_PLUGIN(plugin->v1_1.infer(h, &input, 1, outputs, &n_out), SMI_ERROR_RUNTIME, "RuntimeError: typed infer failed");
    /* SMI 1.2: a deadline stops Python code that would run forever, and the plugin serves on. */
    {
        struct timespec now;
        double started, took;
        h = add_model("spin", "", NULL);
        memset(outputs, 0, sizeof outputs);
        n_out = 2;
        clock_gettime(CLOCK_MONOTONIC, &now);
        started = now.tv_sec * 1e3 + now.tv_nsec / 1e6;
        EXPECT_PLUGIN(plugin->v1_2.infer_with_deadline(h, &input, 1, outputs, &n_out,
                                                       (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec + 300000000u),
                      SMI_ERROR_TIMEOUT, "passed its deadline");
        clock_gettime(CLOCK_MONOTONIC, &now);
        took = now.tv_sec * 1e3 + now.tv_nsec / 1e6 - started;
        printf("python bridge: a spinning infer was stopped %.0f ms into a 300 ms deadline\n", took);
        CHECK(took >= 250 && took < 3000, "the spinning infer took %.0f ms", took);
        CHECK(outputs[0].release == NULL, "a stopped infer leaves no output allocated");
    }
    memset(outputs, 0, sizeof outputs);
    n_out = 2;
    OK(plugin->v1_1.infer(good, &input, 1, outputs, &n_out));
    CHECK(n_out == 1 && strcmp(outputs[0].name, "output_0") == 0 && ((float*)outputs[0].data)[2] == 6.0f,
          "list answer: %zu outputs", n_out);
    if (outputs[0].release) outputs[0].release(&outputs[0]);
    size = n_out = 0;
    EXPECT_PLUGIN(plugin->v1_1.get_model_io(good, NULL, &size, NULL, &n_out), SMI_ERROR_NOT_SUPPORTED, "has no get_model_io");
    OK(api->cleanup());
}

/* Last: finalizing the interpreter the bridge started. */
static void test_finalize(const char* dir) {
    snprintf(config, sizeof config,
             "{\"module\": \"my_python_plugin\", \"class\": \"MyPythonPlugin\", \"path\": \"%s\", \"finalize_on_cleanup\": true}", dir);
    OK(api->initialize(config));
    smi_model_handle_t h = add_model("echo", "echo", NULL);
    OK(api->load_model(h, NULL));
    OK(api->cleanup());
    smi_model_metadata_t m = {"late", "echo", NULL, NULL, NULL};
    EXPECT_PLUGIN(api->register_model(&m, &h), SMI_ERROR_INVALID_STATE, "not initialized");
}

int main(int argc, char** argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s <libmlos_python_plugin.so> <c-tests/python> <affine.json>\n", argv[0]);
        return 2;
    }
    plugin = mlos_open_plugin(argv[1]);
    api = &plugin->interface;
    CHECK(plugin->v1_1.capabilities & SMI_CAP_THREAD_SAFE, "the bridge takes the GIL itself");
    CHECK(strcmp(plugin->plugin_id, "python-bridge") == 0, "id %s", plugin->plugin_id);

    test_sample(argv[2], argv[3]);
    test_protocol_errors(argv[2]);
    test_finalize(argv[2]);
    if (mlos_test_failures) {
        fprintf(stderr, "%d check(s) failed\n", mlos_test_failures);
        return 1;
    }
    printf("python bridge: all checks passed\n");
    return 0;
}
