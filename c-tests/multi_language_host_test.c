/* Plugins in four languages behind one libmlos_core.so: the ONNX Runtime plugin (C#), the guide's
 * C plugin, the Go plugin and the Python bridge serving the sample class, all loaded together and
 * run from 8 threads at once, every answer checked; then the Go plugin's too-small buffer.
 *   multi_language_host_test <build-dir> <tests/models/onnx> <c-tests/python> <affine.json> <go-plugin.so> */
#include <pthread.h>

#include "fixture_suite.h"

#define THREADS 8
#define ITERATIONS 200

static mlos_api_t api;
static mlos_core_t* core;
static ref_case_t mlp_ref;
static fixture_suite_t onnx_suite;
static const char* const onnx_models[] = {"mlp"};
static const float scale = 2.5f, bias = -1.0f; /* c-tests/fixtures/affine.json */

/* One untyped call; 1 if the answer is `expected`. */
static int answers(const char* model, const void* in, size_t n, const void* expected, size_t expected_size) {
    unsigned char out[256];
    size_t size = sizeof out;
    int rc = api.inference(core, model, in, n, out, &size);
    if (rc != SMI_SUCCESS) {
        CHECK(0, "%s: status %d: %s", model, rc, api.last_error());
        return 0;
    }
    return size == expected_size && memcmp(out, expected, size) == 0;
}

static void* worker(void* arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (int i = 0; i < ITERATIONS; i++) {
        float x[8], y[8];
        char text[64];
        int n = snprintf(text, sizeof text, "thread %u call %d", seed, i);
        for (int k = 0; k < 8; k++) {
            x[k] = (float)(seed * 100 + i) * 0.25f - (float)k;
            y[k] = scale * x[k] + bias;
        }
        CHECK(suite_typed_once(&onnx_suite, 0, 1) == 0, "thread %u: ONNX mlp", seed);
        CHECK(answers("guide-echo", text, (size_t)n, text, (size_t)n), "thread %u: guide C echo", seed);
        CHECK(answers("go-echo", text, (size_t)n, text, (size_t)n), "thread %u: Go echo", seed);
        CHECK(answers("go-affine", x, sizeof x, y, sizeof y), "thread %u: Go affine", seed);
        CHECK(answers("py-affine", x, sizeof x, y, sizeof y), "thread %u: Python affine", seed);
        CHECK(answers("py-echo", text, (size_t)n, text, (size_t)n), "thread %u: Python echo", seed);
        if (mlos_test_failures > 20) break;
    }
    return NULL;
}

int main(int argc, char** argv) {
    char path[4096], config[4096], json[4096];
    pthread_t threads[THREADS];
    float x[4] = {1, 2, 3, 4}, small[2];
    size_t size;
    if (argc != 6) {
        fprintf(stderr, "usage: %s <build-dir> <onnx-fixtures> <python-fixtures> <affine.json> <go-plugin.so>\n", argv[0]);
        return 2;
    }
    const char* affine = argv[4];
    mlos_api_load(&api, argv[1]);
    EXPECT_OK(&api, api.create(NULL, &core));

    EXPECT_OK(&api, api.load_plugin(core, mlos_path(path, sizeof path, argv[1], "plugins/libmlos_onnx_plugin.so"), NULL,
                                    "{\"intra_op_threads\":1}"));
    EXPECT_OK(&api, api.load_plugin(core, mlos_path(path, sizeof path, argv[1], "c-tests/plugins/libmlos_guide_plugin.so"), NULL, NULL));
    EXPECT_OK(&api, api.load_plugin(core, argv[5], NULL, "{}"));
    snprintf(config, sizeof config, "{\"module\": \"my_python_plugin\", \"class\": \"MyPythonPlugin\", \"path\": \"%s\"}", argv[3]);
    EXPECT_OK(&api, api.load_plugin(core, mlos_path(path, sizeof path, argv[1], "plugins/libmlos_python_plugin.so"), NULL, config));
    size = sizeof json;
    EXPECT_OK(&api, api.list_plugins(core, json, &size));
    CHECK(strstr(json, "\"onnx-runtime\"") && strstr(json, "\"my-ml-plugin\"") && strstr(json, "\"go-example\"") &&
          strstr(json, "\"python-bridge\",\"name\":\"My Python ML Plugin\""), "four plugins: %s", json);

    snprintf(path, sizeof path, "%s/mlp.onnx", argv[2]);
    EXPECT_OK(&api, api.register_model(core, "mlp", "onnx-runtime", path, "{\"framework\":\"onnx\"}"));
    EXPECT_OK(&api, api.register_model(core, "guide-echo", "my-ml-plugin", affine, NULL));
    EXPECT_OK(&api, api.register_model(core, "go-echo", "go-example", affine, "{\"framework\":\"echo\"}"));
    EXPECT_OK(&api, api.register_model(core, "go-affine", "go-example", affine, "{\"framework\":\"affine\"}"));
    EXPECT_OK(&api, api.register_model(core, "py-affine", "python-bridge", affine, "{\"framework\":\"affine\"}"));
    EXPECT_OK(&api, api.register_model(core, "py-echo", "python-bridge", affine, "{\"framework\":\"echo\"}"));
    const char* all[] = {"mlp", "guide-echo", "go-echo", "go-affine", "py-affine", "py-echo"};
    for (size_t m = 0; m < sizeof all / sizeof all[0]; m++) EXPECT_OK(&api, api.load_model(core, all[m]));

    snprintf(path, sizeof path, "%s/mlp.ref", argv[2]);
    if (ref_load(&mlp_ref, path) != 0) return 2;
    onnx_suite = (fixture_suite_t){&api, core, onnx_models, &mlp_ref, 1, 1e-5};

    for (uintptr_t t = 0; t < THREADS; t++) pthread_create(&threads[t], NULL, worker, (void*)(t + 1));
    for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);

    /* The Go plugin given a too-small output buffer says how much it needs; the core passes it on. */
    size = sizeof small;
    EXPECT_STATUS(&api, api.inference(core, "go-affine", x, sizeof x, small, &size), SMI_ERROR_BUFFER_TOO_SMALL,
                  "16 bytes needed, 8 given");
    CHECK(size == sizeof x, "size needed: %zu", size);
    size = sizeof small;
    EXPECT_STATUS(&api, api.inference(core, "go-affine", x, 6, small, &size), SMI_ERROR_INVALID_PARAM, "not a multiple of 4");
    size = sizeof small;
    EXPECT_STATUS(&api, api.inference(core, "py-affine", x, sizeof x, small, &size), SMI_ERROR_BUFFER_TOO_SMALL, "16 bytes needed");
    EXPECT_STATUS(&api, api.register_model(core, "go-bad", "go-example", affine, "{\"framework\":\"tensorflow\"}"),
                  SMI_ERROR_NOT_SUPPORTED, "serves frameworks echo and affine");
    EXPECT_STATUS(&api, api.register_model(core, "go-missing", "go-example", "/nonexistent.json", "{\"framework\":\"affine\"}"),
                  SMI_SUCCESS, (const char*)NULL);
    EXPECT_STATUS(&api, api.load_model(core, "go-missing"), SMI_ERROR_NOT_FOUND, "cannot read affine model");
    size = sizeof json;
    EXPECT_OK(&api, api.model_info(core, "go-affine", json, &size));
    CHECK(strstr(json, "\"scale\":2.5") != NULL, "Go model info: %s", json);

    EXPECT_OK(&api, api.destroy(core));
    ref_free(&mlp_ref);
    if (mlos_test_failures) {
        fprintf(stderr, "%d check(s) failed\n", mlos_test_failures);
        return 1;
    }
    printf("four languages, %d threads x %d calls each: all answers checked\n", THREADS, ITERATIONS);
    return 0;
}
