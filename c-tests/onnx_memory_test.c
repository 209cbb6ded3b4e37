/* Unloading an ONNX model gives its memory back: 200 load / infer / unload cycles of the real
 * OCR classifier through libmlos_core.so must leave the resident set within a few MB of where
 * it was after a warm-up (allocator pools and code pages settle during the warm-up). */
#include <unistd.h>

#include "test_support.h"

#define WARMUP 20
#define CYCLES 200
#define ALLOWED_GROWTH_MB 8.0

static double rss_mb(void) {
    long pages = 0, resident = 0;
    FILE* f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(f);
    }
    return resident * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

/* Load, one typed inference (output allocated by the plugin, then released), one refused
 * untyped call (raw bytes cannot fill three dynamic dimensions), unload. */
static int cycle(mlos_api_t* api, mlos_core_t* core, float* input, size_t input_size) {
    smi_tensor_t in, out;
    size_t n = 1, size = 16;
    char small[16];
    int bad = 0;
    memset(&in, 0, sizeof in);
    memset(&out, 0, sizeof out);
    in.name = "x";
    in.dtype = SMI_DTYPE_FP32;
    in.ndim = 4;
    in.shape[0] = 1;
    in.shape[1] = 3;
    in.shape[2] = 48;
    in.shape[3] = 192;
    in.data = input;
    in.byte_size = input_size;
    if (api->load_model(core, "ocr") != SMI_SUCCESS) return -1;
    bad += api->infer(core, "ocr", &in, 1, &out, &n) != SMI_SUCCESS || n != 1 || out.byte_size != 2 * sizeof(float);
    api->release_outputs(&out, n);
    bad += api->inference(core, "ocr", input, input_size, small, &size) != SMI_ERROR_INVALID_PARAM;
    bad += api->unload_model(core, "ocr") != SMI_SUCCESS;
    return bad;
}

int main(int argc, char** argv) {
    mlos_api_t api;
    mlos_core_t* core;
    char path[4096];
    static float input[3 * 48 * 192];
    double start, end;
    int i, failures = 0;
    if (argc != 3) {
        fprintf(stderr, "usage: %s <build-dir> <fetched-models-dir>\n", argv[0]);
        return 2;
    }
    mlos_api_load(&api, argv[1]);
    EXPECT_OK(&api, api.create(NULL, &core));
    EXPECT_OK(&api, api.load_plugin(core, mlos_path(path, sizeof path, argv[1], "plugins/libmlos_onnx_plugin.so"), NULL, NULL));
    snprintf(path, sizeof path, "%s/ch_ppocr_mobile_v2.0_cls_infer.onnx", argv[2]);
    EXPECT_OK(&api, api.register_model(core, "ocr", "onnx-runtime", path, NULL));
    for (i = 0; i < WARMUP; i++) failures += cycle(&api, core, input, sizeof input) != 0;
    start = rss_mb();
    for (i = 0; i < CYCLES; i++) failures += cycle(&api, core, input, sizeof input) != 0;
    end = rss_mb();
    CHECK(failures == 0, "%d cycles failed: %s", failures, api.last_error());
    printf("RSS after %d warm-up cycles: %.1f MB; after %d more: %.1f MB (growth %.1f MB)\n", WARMUP, start, CYCLES, end, end - start);
    CHECK(end - start <= ALLOWED_GROWTH_MB, "RSS grew by %.1f MB over %d load/unload cycles", end - start, CYCLES);
    EXPECT_OK(&api, api.destroy(core));
    return mlos_test_failures ? 1 : 0;
}
