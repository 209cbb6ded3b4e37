/* #12 item 10, inference half: a model's "timeout_ms" reaches its plugin as an SMI 1.2 deadline
 * (infer_with_deadline), and the ONNX Runtime plugin stops a run that passes it through the
 * run's terminate flag: slow.onnx loops Tanh(x @ W) as many times as asked, so a run of 2^31
 * iterations would take hours, and must instead fail with SMI_ERROR_TIMEOUT in about the
 * model's timeout. A plugin without the 1.2 entry cannot honour a timeout: registering a model
 * with one on it is refused, not accepted and then ignored. */
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
