/* Unloading a model gives its memory back: 200 load / infer / unload cycles through
 * libmlos_core.so must leave the resident set within a few MB of where it was after a warm-up
 * (allocator pools and code pages settle during the warm-up). One FP32 input, any plugin:
 *
 *   model_memory_test <build-dir> <plugin.so> <plugin-id> <model-file> <input-name> <dim>...
 */
#include <unistd.h>

#include "test_support.h"

#define WARMUP 20
#ifndef CYCLES
#define CYCLES 200
#endif
#define ALLOWED_GROWTH_MB 8.0


/* Load, one typed inference (output allocated by the plugin, then released), unload. */
static int cycle(mlos_api_t* api, mlos_core_t* core, const smi_tensor_t* input) {
    smi_tensor_t out[4];
    size_t n = 4;
    int bad = 0;
    memset(out, 0, sizeof out);
    if (api->load_model(core, "model") != SMI_SUCCESS) return 1;
    bad += api->infer(core, "model", input, 1, out, &n) != SMI_SUCCESS || n == 0;
    api->release_outputs(out, n);
    bad += api->unload_model(core, "model") != SMI_SUCCESS;
    return bad;
}

int main(int argc, char** argv) {
    mlos_api_t api;
    mlos_core_t* core;
    smi_tensor_t input;
    double start, end;
    int i, failures = 0;
    size_t count = 1;
    if (argc < 7 || argc - 6 > SMI_MAX_DIMS) {
        fprintf(stderr, "usage: %s <build-dir> <plugin.so> <plugin-id> <model-file> <input-name> <dim>...\n", argv[0]);
        return 2;
    }
    memset(&input, 0, sizeof input);
    input.name = argv[5];
    input.dtype = SMI_DTYPE_FP32;
    input.ndim = (uint32_t)(argc - 6);
    for (i = 0; i < (int)input.ndim; i++) count *= (size_t)(input.shape[i] = atoll(argv[6 + i]));
    input.byte_size = count * sizeof(float);
    input.data = calloc(count, sizeof(float));

    mlos_api_load(&api, argv[1]);
    EXPECT_OK(&api, api.create(NULL, &core));
    EXPECT_OK(&api, api.load_plugin(core, argv[2], NULL, NULL));
    EXPECT_OK(&api, api.register_model(core, "model", argv[3], argv[4], NULL));
    for (i = 0; i < WARMUP; i++) failures += cycle(&api, core, &input) != 0;
    start = (mlos_rss_bytes() / (1024.0 * 1024.0));
    for (i = 0; i < CYCLES; i++) failures += cycle(&api, core, &input) != 0;
    end = (mlos_rss_bytes() / (1024.0 * 1024.0));
    CHECK(failures == 0, "%d cycles failed: %s", failures, api.last_error());
    printf("%s: RSS after %d warm-up cycles %.1f MB; after %d more %.1f MB (growth %.1f MB)\n", argv[3], WARMUP, start, CYCLES,
           end, end - start);
    CHECK(end - start <= ALLOWED_GROWTH_MB, "RSS grew by %.1f MB over %d load/unload cycles", end - start, CYCLES);
    EXPECT_OK(&api, api.destroy(core));
    free(input.data);
    return mlos_test_failures ? 1 : 0;
}
