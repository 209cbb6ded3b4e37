/* #12 item 10, inference half: a model's "timeout_ms" reaches its plugin as an SMI 1.2 deadline
 * (infer_with_deadline), and the ONNX Runtime plugin stops a run that passes it through the
 * run's terminate flag: slow.onnx loops Tanh(x @ W) as many times as asked, so a run of 2^31
 * iterations would take hours, and must instead fail with SMI_ERROR_TIMEOUT in about the
 * model's timeout. A plugin without the 1.2 entry cannot honour a timeout: registering a model
 * with one on it is refused, not accepted and then ignored. And a request with a deadline waits
 * for the gate of a serialised plugin only until its deadline: the call holding the gate may
 * never return. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "hostile_items.h"

/* One run of slow.onnx with `iterations` loop steps; the output is released on success. */
static int run_slow(mlos_core_t* core, int64_t iterations) {
    float x[64];
    smi_tensor_t inputs[2], output;
    size_t num_outputs = 1;
    int status;
    for (int i = 0; i < 64; i++) x[i] = (float)i / 64.0f;
    inputs[0] = fp32_tensor("x", x, 1, 64);
    memset(&inputs[1], 0, sizeof inputs[1]);
    inputs[1].name = "iterations";
    inputs[1].dtype = SMI_DTYPE_INT64;
    inputs[1].ndim = 0; /* a scalar: one element */
    inputs[1].data = &iterations;
    inputs[1].byte_size = sizeof iterations;
    memset(&output, 0, sizeof output);
    status = api.infer(core, "slow", inputs, 2, &output, &num_outputs);
    if (status == SMI_SUCCESS) {
        CHECK(num_outputs == 1 && output.byte_size == 64 * sizeof(float), "slow.onnx answered %zu outputs, %zu bytes",
              num_outputs, output.byte_size);
        api.release_outputs(&output, num_outputs);
    }
    CHECK(output.release == NULL, "a failed or released output still has a release");
    return status;
}

void item_inference_deadline(void) {
    mlos_core_t* core = NULL;
    char path[4096];
    double started, took;
    int status;
    EXPECT_OK(&api, api.create(NULL, &core));
    EXPECT_OK(&api, api.load_plugin(core, onnx_plugin_path(), NULL, "{\"intra_op_threads\":1}"));
    snprintf(path, sizeof path, "%s/slow.onnx", env.onnx_dir);
    EXPECT_OK(&api, api.register_model(core, "slow", "onnx-runtime", path, "{\"timeout_ms\":300}"));
    EXPECT_OK(&api, api.load_model(core, "slow"));

    phase("a short run within the timeout");
    EXPECT_OK(&api, run_slow(core, 10));

    phase("a run of 2^31 iterations against a 300 ms timeout");
    started = now_ms();
    status = run_slow(core, (int64_t)1 << 31);
    took = now_ms() - started;
    EXPECT_STATUS(&api, status, SMI_ERROR_TIMEOUT, "deadline");
    NOTE("a run past its 300 ms deadline was stopped after %.0f ms", took);
    CHECK(took >= 250 && took < 3000, "the stopped run took %.0f ms (timeout 300 ms)", took);

    phase("the model serves again after a stopped run");
    EXPECT_OK(&api, run_slow(core, 10));

    phase("timeout_ms on a plugin without infer_with_deadline");
    EXPECT_OK(&api, api.load_plugin(core, hostile_path(0), NULL, NULL));
    EXPECT_STATUS(&api, api.register_model(core, "no-deadline", "hostile", NULL, "{\"timeout_ms\":100}"),
                  SMI_ERROR_NOT_SUPPORTED, "infer_with_deadline");
    EXPECT_STATUS(&api, api.register_model(core, "bad-timeout", "onnx-runtime", path, "{\"timeout_ms\":0}"),
                  SMI_ERROR_INVALID_PARAM, "timeout_ms");

    phase("destroy");
    EXPECT_OK(&api, api.destroy(core));
}

/* One typed infer on a hostile model, its outputs released. */
static int infer_hostile(mlos_core_t* core, const char* id) {
    float x[2] = {1.0f, 2.0f};
    smi_tensor_t input = fp32_tensor("x", x, 1, 2), outputs[2];
    size_t num_outputs = 2;
    int status;
    memset(outputs, 0, sizeof outputs);
    status = api.infer(core, id, &input, 1, outputs, &num_outputs);
    if (status == SMI_SUCCESS) api.release_outputs(outputs, num_outputs);
    return status;
}

typedef struct {
    mlos_core_t* core;
    int status;
} hung_t;

static void* hang_in_plugin(void* arg) {
    hung_t* h = arg;
    h->status = infer_hostile(h->core, "hang");
    return NULL;
}

void item_gate_deadline(void) {
    hostile_lib_t lib;
    mlos_core_t* core = core_with_hostile(1, &lib);
    hung_t hung = {core, -100};
    pthread_t thread;
    double started, took;
    add_hostile(core, "hang", "hostile-serial", "hang=1", 0);
    EXPECT_OK(&api, api.register_model(core, "quick", "hostile-serial", NULL, "{\"timeout_ms\":300}"));
    EXPECT_OK(&api, api.load_model(core, "quick"));

    phase("a request hangs in the serialised plugin, holding its gate");
    pthread_create(&thread, NULL, hang_in_plugin, &hung);
    CHECK(WAIT_FOR_STAT(&lib, hung, 1, 2000), "the request never reached the plugin");

    phase("a request with a 300 ms timeout waits for the gate");
    started = now_ms();
    EXPECT_STATUS(&api, infer_hostile(core, "quick"), SMI_ERROR_TIMEOUT, "deadline waiting for plugin");
    took = now_ms() - started;
    NOTE("a request behind a hung call gave up after %.0f ms (timeout 300 ms)", took);
    CHECK(took >= 250 && took < 3000, "waiting for the gate took %.0f ms", took);

    phase("the hung call is released; the model serves again");
    lib.release_hang();
    pthread_join(thread, NULL);
    CHECK(hung.status == SMI_SUCCESS, "the released request returned %d", hung.status);
    EXPECT_OK(&api, infer_hostile(core, "quick"));
    EXPECT_OK(&api, api.destroy(core));
}
