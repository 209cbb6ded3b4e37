/* The ONNX Runtime plugin (NativeAOT) driven by a C host through libmlos_core.so: every fixture
 * model through typed infer (plugin-allocated and caller-provided outputs) and through the
 * untyped MLOS convention (JSON, raw bytes), checked against references computed with numpy,
 * from 8 threads at once; then the plugin's error paths. */
#include "fixture_suite.h"

#define THREADS 8
#define ITERATIONS 25
#define TOLERANCE 1e-5

static mlos_api_t api;
static mlos_core_t* core;
static const char* models_dir;
static const char* fetched_dir;

/* The committed fixtures, then the real model fetched by the build (see tests/models). */
static const char* const fixtures[] = {"mlp", "multi_io", "strings", "dtypes", "ocr_cls"};
#define NUM_FIXTURES (sizeof fixtures / sizeof fixtures[0])
static ref_case_t refs[NUM_FIXTURES];
static fixture_suite_t suite;

static const char* model_path(char* buf, size_t n, const char* name, const char* ext) {
    snprintf(buf, n, "%s/%s.%s", models_dir, name, ext);
    return buf;
}

/* Output 0 into a buffer of ours: written in place, no release. */
static void test_caller_buffers(void) {
    const ref_case_t* c = &refs[0];
    smi_tensor_t input = ref_as_input(&c->inputs[0]), output;
    size_t num_outputs = 1;
    char why[256];
    float buffer[64];
    memset(&output, 0, sizeof output);
    output.data = buffer;
    output.byte_size = sizeof buffer;
    EXPECT_OK(&api, api.infer(core, "mlp", &input, 1, &output, &num_outputs));
    CHECK(output.data == buffer && output.release == NULL, "caller buffer not used in place");
    CHECK(ref_matches(&c->outputs[0], &output, TOLERANCE, why, sizeof why), "%s", why);
    output.data = buffer;
    output.byte_size = 8;
    EXPECT_STATUS(&api, api.infer(core, "mlp", &input, 1, &output, &num_outputs), SMI_ERROR_BUFFER_TOO_SMALL, "48 bytes needed, 8 given");
}

/* mlos_core_infer_selected: only the named output comes back, in one slot (the plugin was asked
 * for it alone: writing all three would need three), with the reference's values; an unknown or
 * repeated name is refused with nothing allocated. */
static void test_selected_outputs(void) {
    const ref_case_t* multi = &refs[1]; /* multi_io: logits, ids_sum, mask */
    smi_tensor_t inputs[2] = {ref_as_input(&multi->inputs[0]), ref_as_input(&multi->inputs[1])}, outputs[3];
    const char* const one[] = {"ids_sum"};
    const char* const unknown[] = {"nope"};
    const char* const twice[] = {"mask", "mask"};
    const ref_tensor_t* ids_sum = NULL;
    size_t n = 1;
    int o;
    for (o = 0; o < multi->num_outputs; o++)
        if (strcmp(multi->outputs[o].name, "ids_sum") == 0) ids_sum = &multi->outputs[o];
    CHECK(ids_sum != NULL, "multi_io.ref has ids_sum");
    memset(outputs, 0, sizeof outputs);
    EXPECT_OK(&api, api.infer_selected(core, "multi_io", inputs, 2, one, 1, outputs, &n));
    CHECK(n == 1 && strcmp(outputs[0].name, "ids_sum") == 0, "one output, ids_sum");
    CHECK(ids_sum && outputs[0].byte_size == ids_sum->byte_size && memcmp(outputs[0].data, ids_sum->data, ids_sum->byte_size) == 0,
          "ids_sum has the reference's values");
    api.release_outputs(outputs, n);
    n = 3;
    memset(outputs, 0, sizeof outputs);
    EXPECT_STATUS(&api, api.infer_selected(core, "multi_io", inputs, 2, unknown, 1, outputs, &n), SMI_ERROR_INVALID_PARAM,
                  "model 'multi_io' has no output 'nope' (its outputs: logits, ids_sum, mask)");
    EXPECT_STATUS(&api, api.infer_selected(core, "multi_io", inputs, 2, twice, 2, outputs, &n), SMI_ERROR_INVALID_PARAM, "requested twice");
    CHECK(outputs[0].release == NULL && outputs[1].release == NULL, "nothing allocated after a refusal");
    EXPECT_STATUS(&api, api.infer_selected(core, "multi_io", inputs, 2, NULL, 1, outputs, &n), SMI_ERROR_INVALID_PARAM, "output_names is NULL");
}

/* Untyped errors of the convention as this plugin meets them (the happy paths are the suite's). */
static void test_untyped_errors(void) {
    static char answer[256];
    const ref_tensor_t* in = &refs[0].inputs[0];
    size_t size = sizeof answer;
    EXPECT_STATUS(&api, api.inference(core, "mlp", in->data, 7, answer, &size), SMI_ERROR_INVALID_PARAM, "not a whole number of FP32");
    size = sizeof answer;
    EXPECT_STATUS(&api, api.inference(core, "multi_io", in->data, 64, answer, &size), SMI_ERROR_INVALID_PARAM, "single-input model");
}

static void test_errors(void) {
    char path[4096], json[8192];
    size_t size = sizeof json, n = 4;
    smi_tensor_t input = ref_as_input(&refs[0].inputs[0]), outputs[4];
    int32_t ints[48] = {0};
    memset(outputs, 0, sizeof outputs);

    /* Wrong dtype, wrong shape, wrong size, unknown name, missing input. */
    input.dtype = SMI_DTYPE_INT32;
    input.data = ints;
    EXPECT_STATUS(&api, api.infer(core, "mlp", &input, 1, outputs, &n), SMI_ERROR_INVALID_PARAM, "is INT32; model 'mlp' expects FP32");
    input = ref_as_input(&refs[0].inputs[0]);
    input.shape[1] = 15;
    input.byte_size = 3 * 15 * sizeof(float); /* bytes that fit the shape: the model's spec is what refuses it */
    EXPECT_STATUS(&api, api.infer(core, "mlp", &input, 1, outputs, &n), SMI_ERROR_INVALID_PARAM, "expects [-1,16]");
    input = ref_as_input(&refs[0].inputs[0]);
    input.ndim = 3;
    input.shape[2] = 1;
    EXPECT_STATUS(&api, api.infer(core, "mlp", &input, 1, outputs, &n), SMI_ERROR_INVALID_PARAM, "has shape [3,16,1]");
    input = ref_as_input(&refs[0].inputs[0]);
    input.byte_size -= 4;
    EXPECT_STATUS(&api, api.infer(core, "mlp", &input, 1, outputs, &n), SMI_ERROR_INVALID_PARAM, "needs 192");
    input = ref_as_input(&refs[0].inputs[0]);
    input.name = "nope";
    EXPECT_STATUS(&api, api.infer(core, "mlp", &input, 1, outputs, &n), SMI_ERROR_INVALID_PARAM, "model 'mlp' has no input 'nope' (its inputs: input)");
    input = ref_as_input(&refs[1].inputs[0]);
    EXPECT_STATUS(&api, api.infer(core, "multi_io", &input, 1, outputs, &n), SMI_ERROR_INVALID_PARAM, "model 'multi_io' needs input 'features'");

    /* Untyped: malformed JSON, wrong element type, ragged arrays. */
    EXPECT_STATUS(&api, api.inference(core, "mlp", "{\"input\": [1, 2,", 16, json, &size), SMI_ERROR_INVALID_PARAM,
                  "is not valid JSON");
    size = sizeof json;
    EXPECT_STATUS(&api, api.inference(core, "multi_io", "{\"input_ids\":[\"a\"]}", 19, json, &size), SMI_ERROR_INVALID_PARAM,
                  "(INT64) needs a number");
    size = sizeof json;
    EXPECT_STATUS(&api, api.inference(core, "mlp", "{\"input\":[[1,2],[3]]}", 21, json, &size), SMI_ERROR_INVALID_PARAM, "not a rectangular array");

    /* Loading: missing file, a file that is not ONNX, a CUDA device this machine lacks. */
    EXPECT_OK(&api, api.register_model(core, "missing", "onnx-runtime", "/nonexistent/model.onnx", NULL));
    EXPECT_STATUS(&api, api.load_model(core, "missing"), SMI_ERROR_NOT_FOUND, "model file not found");
    EXPECT_OK(&api, api.register_model(core, "not-onnx", "onnx-runtime", model_path(path, sizeof path, "mlp", "ref"), NULL));
    EXPECT_STATUS(&api, api.load_model(core, "not-onnx"), SMI_ERROR_INVALID_PARAM, "ONNX Runtime cannot load");
    EXPECT_STATUS(&api, api.register_model(core, "bad-config", "onnx-runtime", path, "{\"config\":{\"device\":\"tpu\"}}"),
                  SMI_ERROR_INVALID_PARAM, "device must be \"cpu\" or \"cuda:N\"");
    EXPECT_OK(&api, api.register_model(core, "gpu", "onnx-runtime", model_path(path, sizeof path, "mlp", "onnx"),
                                       "{\"config\":{\"device\":\"cuda:0\"}}"));
    {
        int status = api.load_model(core, "gpu");
        /* On a machine with CUDA 13 this loads; elsewhere it must say why, not crash. */
        CHECK(status == SMI_SUCCESS || (status == SMI_ERROR_NOT_SUPPORTED && strstr(api.last_error(), "CUDA is not usable")),
              "cuda:0 load: %d %s", status, api.last_error());
    }
    EXPECT_OK(&api, api.register_model(core, "gpu-or-cpu", "onnx-runtime", path,
                                       "{\"config\":{\"device\":\"cuda:0\",\"allow_cpu_fallback\":true}}"));
    EXPECT_OK(&api, api.load_model(core, "gpu-or-cpu"));
    {
        const ref_case_t* c = &refs[0];
        smi_tensor_t in = ref_as_input(&c->inputs[0]), out;
        size_t one = 1;
        char why[256];
        memset(&out, 0, sizeof out);
        EXPECT_OK(&api, api.infer(core, "gpu-or-cpu", &in, 1, &out, &one));
        CHECK(ref_matches(&c->outputs[0], &out, TOLERANCE, why, sizeof why), "fallback model: %s", why);
        api.release_outputs(&out, one);
    }
    /* Resources: CPU threads rebuild the session; host memory cannot be capped; the GPU needs CUDA. */
    {
        smi_resource_req_t threads = {SMI_RESOURCE_CPU_THREADS, 0, 2}, memory = {SMI_RESOURCE_MEMORY, 0, 1 << 30},
                           gpu = {SMI_RESOURCE_GPU, 0, 0};
        int status;
        EXPECT_OK(&api, api.allocate_resources(core, "mlp", &threads, 1));
        size = sizeof json;
        EXPECT_OK(&api, api.model_info(core, "mlp", json, &size));
        CHECK(strstr(json, "\"intra_op_threads\":2") != NULL, "after a CPU request: %s", json);
        CHECK(suite_typed_once(&suite, 0, 1) == 0, "mlp after its session was rebuilt");
        EXPECT_STATUS(&api, api.allocate_resources(core, "mlp", &memory, 1), SMI_ERROR_NOT_SUPPORTED, "cannot cap host memory");
        status = api.allocate_resources(core, "mlp", &gpu, 1);
        CHECK(status == SMI_SUCCESS || (status == SMI_ERROR_NOT_SUPPORTED && strstr(api.last_error(), "CUDA is not usable")),
              "GPU request: %d %s", status, api.last_error());
        EXPECT_OK(&api, api.deallocate_resources(core, "mlp"));
        size = sizeof json;
        EXPECT_OK(&api, api.model_info(core, "mlp", json, &size));
        CHECK(strstr(json, "\"intra_op_threads\":1") != NULL && strstr(json, "\"device\":\"cpu\""), "after deallocate: %s", json);
        EXPECT_STATUS(&api, api.allocate_resources(core, "mlp", NULL, 1), SMI_ERROR_INVALID_PARAM, "requirements is NULL");
    }
    size = sizeof json;
    EXPECT_OK(&api, api.model_info(core, "multi_io", json, &size));
    CHECK(strstr(json, "\"name\":\"input_ids\",\"datatype\":\"INT64\",\"shape\":[-1,8]") != NULL, "model info: %s", json);
}

/* The OCR classifier's input: synthetic, by integer arithmetic, as tests/models/ocr_reference.mjs
 * makes it for onnxruntime-node. */
static void make_ocr_input(ref_tensor_t* t) {
    int64_t i;
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "x");
    t->dtype = SMI_DTYPE_FP32;
    t->ndim = 4;
    t->shape[0] = 2;
    t->shape[1] = 3;
    t->shape[2] = 48;
    t->shape[3] = 192;
    t->count = 2 * 3 * 48 * 192;
    t->byte_size = (size_t)t->count * sizeof(float);
    t->data = malloc(t->byte_size);
    for (i = 0; i < t->count; i++) ((float*)t->data)[i] = (float)((double)((i * 7919) % 1000) / 1000 * 2 - 1);
}

int main(int argc, char** argv) {
    char path[4096];
    size_t f;
    if (argc != 4) {
        fprintf(stderr, "usage: %s <build-dir> <fixtures-dir> <fetched-models-dir>\n", argv[0]);
        return 2;
    }
    models_dir = argv[2];
    fetched_dir = argv[3];
    mlos_api_load(&api, argv[1]);
    EXPECT_OK(&api, api.create(NULL, &core));
    EXPECT_OK(&api, api.load_plugin(core, mlos_path(path, sizeof path, argv[1], "plugins/libmlos_onnx_plugin.so"), NULL,
                                    "{\"intra_op_threads\":1}"));
    for (f = 0; f < NUM_FIXTURES; f++) {
        int fetched = strcmp(fixtures[f], "ocr_cls") == 0;
        if (ref_load(&refs[f], model_path(path, sizeof path, fixtures[f], "ref")) != 0) return 2;
        if (fetched) {
            make_ocr_input(&refs[f].inputs[0]);
            refs[f].num_inputs = 1;
            snprintf(path, sizeof path, "%s/ch_ppocr_mobile_v2.0_cls_infer.onnx", fetched_dir);
        } else {
            model_path(path, sizeof path, fixtures[f], "onnx");
        }
        EXPECT_OK(&api, api.register_model(core, fixtures[f], "onnx-runtime", path, "{\"framework\":\"onnx\"}"));
        EXPECT_OK(&api, api.load_model(core, fixtures[f]));
    }
    suite.api = &api;
    suite.core = core;
    suite.models = fixtures;
    suite.refs = refs;
    suite.count = NUM_FIXTURES;
    suite.tolerance = TOLERANCE;
    suite_test_typed(&suite);
    test_caller_buffers();
    suite_test_json(&suite);
    suite_test_raw(&suite, 0, "mlp");
    test_untyped_errors();
    suite_test_threads(&suite, THREADS, ITERATIONS);
    test_errors();
    test_selected_outputs();
    EXPECT_OK(&api, api.destroy(core));
    for (f = 0; f < NUM_FIXTURES; f++) ref_free(&refs[f]);
    if (mlos_test_failures) {
        fprintf(stderr, "onnx_host_test: %d check(s) failed\n", mlos_test_failures);
        return 1;
    }
    printf("onnx_host_test: all checks passed\n");
    return 0;
}
