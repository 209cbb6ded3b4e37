/* The TorchSharp plugin (NativeAOT, libtorch CPU) driven by a C host through libmlos_core.so:
 * every TorchScript fixture (tensor, tuple and dict outputs) through typed inference against
 * references computed by torch 1.13, from 8 threads at once; the ONNX plugin running in the
 * same process at the same time; and the plugin's error paths. */
#include <pthread.h>

#include "fixture_suite.h"

#define THREADS 8
#define ITERATIONS 25
#define TOLERANCE 1e-5

static mlos_api_t api;
static mlos_core_t* core;
/* dict.pt returns Dict[str, Tensor], which TorchSharp 0.107 cannot marshal: see test_errors. */
static const char* const fixtures[] = {"mlp", "tokens", "tuple"};
#define NUM_FIXTURES (sizeof fixtures / sizeof fixtures[0])
static ref_case_t refs[NUM_FIXTURES];
static fixture_suite_t torch_suite, onnx_suite;
static ref_case_t onnx_ref;
static const char* const onnx_models[] = {"onnx-mlp"};

static void* run_suite(void* arg) {
    suite_test_threads((const fixture_suite_t*)arg, THREADS / 2, ITERATIONS);
    return NULL;
}

/* Both frameworks in one process, each from its own threads, at the same time. */
static void test_with_onnx(const char* build, const char* onnx_models_dir) {
    char path[4096];
    pthread_t a, b;
    EXPECT_OK(&api, api.load_plugin(core, mlos_path(path, sizeof path, build, "plugins/libmlos_onnx_plugin.so"), NULL, NULL));
    snprintf(path, sizeof path, "%s/mlp.ref", onnx_models_dir);
    if (ref_load(&onnx_ref, path) != 0) {
        mlos_test_failures++;
        return;
    }
    snprintf(path, sizeof path, "%s/mlp.onnx", onnx_models_dir);
    EXPECT_OK(&api, api.register_model(core, "onnx-mlp", "onnx-runtime", path, NULL));
    EXPECT_OK(&api, api.load_model(core, "onnx-mlp"));
    onnx_suite = torch_suite;
    onnx_suite.models = onnx_models;
    onnx_suite.refs = &onnx_ref;
    onnx_suite.count = 1;
    pthread_create(&a, NULL, run_suite, &torch_suite);
    pthread_create(&b, NULL, run_suite, &onnx_suite);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    ref_free(&onnx_ref);
}

static void test_errors(const char* torch_dir) {
    char path[4096], json[4096];
    size_t n = 4, size = sizeof json;
    smi_tensor_t input = ref_as_input(&refs[0].inputs[0]), outputs[4];
    int32_t ints[48] = {0};
    memset(outputs, 0, sizeof outputs);

    /* A Dict output is refused with a clear message (TorchSharp 0.107 cannot marshal it). */
    snprintf(path, sizeof path, "%s/dict.pt", torch_dir);
    EXPECT_OK(&api, api.register_model(core, "dict", "torchsharp", path, NULL));
    EXPECT_OK(&api, api.load_model(core, "dict"));
    input = ref_as_input(&refs[2].inputs[0]);
    EXPECT_STATUS(&api, api.infer(core, "dict", &input, 1, outputs, &n), SMI_ERROR_NOT_SUPPORTED, "Dict outputs among them");
    input = ref_as_input(&refs[0].inputs[0]);
    n = 4;

    /* Names come from the scripted forward signature. */
    EXPECT_OK(&api, api.model_info(core, "tokens", json, &size));
    CHECK(strstr(json, "\"name\":\"input_ids\"") && strstr(json, "\"name\":\"attention_mask\""), "tokens info: %s", json);

    input.name = "nope";
    EXPECT_STATUS(&api, api.infer(core, "mlp", &input, 1, outputs, &n), SMI_ERROR_INVALID_PARAM, "has no input 'nope' (inputs: input_0)");
    input = ref_as_input(&refs[0].inputs[0]);
    input.byte_size -= 4;
    EXPECT_STATUS(&api, api.infer(core, "mlp", &input, 1, outputs, &n), SMI_ERROR_INVALID_PARAM, "needs 192");
    /* Wrong dtype and wrong rank reach libtorch, whose error comes back as the message. */
    input = ref_as_input(&refs[0].inputs[0]);
    input.dtype = SMI_DTYPE_INT32;
    input.data = ints;
    EXPECT_STATUS(&api, api.infer(core, "mlp", &input, 1, outputs, &n), SMI_ERROR_RUNTIME, "failed in forward");
    input = ref_as_input(&refs[0].inputs[0]);
    input.ndim = 1;
    input.shape[0] = 48;
    EXPECT_STATUS(&api, api.infer(core, "mlp", &input, 1, outputs, &n), SMI_ERROR_RUNTIME, "failed in forward");
    input = ref_as_input(&refs[1].inputs[0]);
    EXPECT_STATUS(&api, api.infer(core, "tokens", &input, 1, outputs, &n), SMI_ERROR_INVALID_PARAM, "takes 2 inputs");

    /* Declared specs in the model config are enforced before libtorch sees the tensor. */
    snprintf(path, sizeof path, "%s/mlp.pt", torch_dir);
    EXPECT_OK(&api, api.register_model(core, "typed-mlp", "torchsharp", path,
                                       "{\"config\":{\"inputs\":[{\"name\":\"features\",\"datatype\":\"FP32\",\"shape\":[-1,16]}]}}"));
    EXPECT_OK(&api, api.load_model(core, "typed-mlp"));
    input = ref_as_input(&refs[0].inputs[0]);
    input.name = "features";
    input.dtype = SMI_DTYPE_INT32;
    input.data = ints;
    EXPECT_STATUS(&api, api.infer(core, "typed-mlp", &input, 1, outputs, &n), SMI_ERROR_INVALID_PARAM, "is INT32; model 'typed-mlp' expects FP32");

    /* Loading: a missing file, a file that is not TorchScript, a CUDA device this machine lacks. */
    EXPECT_OK(&api, api.register_model(core, "missing", "torchsharp", "/nonexistent/m.pt", NULL));
    EXPECT_STATUS(&api, api.load_model(core, "missing"), SMI_ERROR_NOT_FOUND, "model file not found");
    snprintf(path, sizeof path, "%s/mlp.ref", torch_dir);
    EXPECT_OK(&api, api.register_model(core, "not-torch", "torchsharp", path, NULL));
    EXPECT_STATUS(&api, api.load_model(core, "not-torch"), SMI_ERROR_INVALID_PARAM, "cannot load");
    snprintf(path, sizeof path, "%s/mlp.pt", torch_dir);
    EXPECT_OK(&api, api.register_model(core, "gpu", "torchsharp", path, "{\"config\":{\"device\":\"cuda:0\"}}"));
    {
        int status = api.load_model(core, "gpu");
        CHECK(status == SMI_SUCCESS || (status == SMI_ERROR_NOT_SUPPORTED && strstr(api.last_error(), "CUDA is not available")),
              "cuda:0 load: %d %s", status, api.last_error());
    }
    EXPECT_OK(&api, api.register_model(core, "gpu-or-cpu", "torchsharp", path, "{\"config\":{\"device\":\"cuda:0\",\"allow_cpu_fallback\":true}}"));
    EXPECT_OK(&api, api.load_model(core, "gpu-or-cpu"));
}

/* Raw bytes need a declared dtype and shape: the signature gives names only. */
static void test_raw_needs_specs(void) {
    static char answer[256];
    const ref_tensor_t* in = &refs[0].inputs[0];
    size_t size = sizeof answer;
    EXPECT_STATUS(&api, api.inference(core, "mlp", in->data, in->byte_size, answer, &size), SMI_ERROR_INVALID_PARAM,
                  "raw bytes need a fixed-size dtype");
}

int main(int argc, char** argv) {
    char path[4096];
    size_t f;
    if (argc != 4) {
        fprintf(stderr, "usage: %s <build-dir> <torch-fixtures-dir> <onnx-fixtures-dir>\n", argv[0]);
        return 2;
    }
    mlos_api_load(&api, argv[1]);
    EXPECT_OK(&api, api.create(NULL, &core));
    EXPECT_OK(&api, api.load_plugin(core, mlos_path(path, sizeof path, argv[1], "plugins/libmlos_torch_plugin.so"), NULL, "test-config"));
    for (f = 0; f < NUM_FIXTURES; f++) {
        snprintf(path, sizeof path, "%s/%s.ref", argv[2], fixtures[f]);
        if (ref_load(&refs[f], path) != 0) return 2;
        snprintf(path, sizeof path, "%s/%s.pt", argv[2], fixtures[f]);
        EXPECT_OK(&api, api.register_model(core, fixtures[f], "torchsharp", path, "{\"framework\":\"pytorch\"}"));
        EXPECT_OK(&api, api.load_model(core, fixtures[f]));
    }
    torch_suite.api = &api;
    torch_suite.core = core;
    torch_suite.models = fixtures;
    torch_suite.refs = refs;
    torch_suite.count = NUM_FIXTURES;
    torch_suite.tolerance = TOLERANCE;
    suite_test_typed(&torch_suite);
    suite_test_threads(&torch_suite, THREADS, ITERATIONS);
    test_with_onnx(argv[1], argv[3]);
    test_errors(argv[2]);
    suite_test_json(&torch_suite);
    suite_test_raw(&torch_suite, 0, "typed-mlp");
    test_raw_needs_specs();
    EXPECT_OK(&api, api.destroy(core));
    for (f = 0; f < NUM_FIXTURES; f++) ref_free(&refs[f]);
    if (mlos_test_failures) {
        fprintf(stderr, "torch_host_test: %d check(s) failed\n", mlos_test_failures);
        return 1;
    }
    printf("torch_host_test: all checks passed\n");
    return 0;
}
