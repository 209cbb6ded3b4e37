/* The C# SDK's function table seen from C, without the core in between: every entry
 * validates its arguments, reports failures as statuses with a per-thread message from
 * get_last_error, and follows the size and ownership protocols of smi_spec.h. Run against
 * the echo plugin (NativeAOT, built on Mlos.Smi). */
#include <dlfcn.h>
#include <stdint.h>

#include "test_support.h"

static smi_plugin_t* plugin;

/* Like EXPECT_STATUS, with the plugin's own last error. */
#define EXPECT_PLUGIN(expr, status, needle) EXPECT_PLUGIN_STATUS(plugin, expr, status, needle)

int main(int argc, char** argv) {
    void* lib;
    smi_plugin_init_func_t init;
    smi_model_metadata_t metadata = {0};
    smi_model_handle_t handle = NULL, bogus = (smi_model_handle_t)(uintptr_t)0x7777;
    char in[32] = "payload", out[32], info[8];
    size_t size = sizeof out, n_in, n_out;
    smi_tensor_spec_t specs[2];
    smi_tensor_t tensor;
    smi_resource_req_t gpu = {SMI_RESOURCE_GPU, 0, 0};
    const smi_plugin_interface_t* api;

    if (argc != 2) {
        fprintf(stderr, "usage: %s <plugin.so>\n", argv[0]);
        return 2;
    }
    lib = dlopen(argv[1], RTLD_NOW);
    if (!lib) {
        fprintf(stderr, "%s\n", dlerror());
        return 2;
    }
    *(void**)&init = dlsym(lib, "smi_plugin_init");
    plugin = init();
    CHECK(plugin == init(), "smi_plugin_init must return the same descriptor every time");
    api = &plugin->interface;
    CHECK(plugin->smi_version == SMI_VERSION, "smi_version 0x%x", plugin->smi_version);
    CHECK(api->get_smi_version() == SMI_VERSION, "get_smi_version 0x%x", api->get_smi_version());
    CHECK(plugin->v1_1.capabilities & SMI_CAP_THREAD_SAFE, "echo declares thread safety");
    CHECK(plugin->v1_1.capabilities & SMI_CAP_TYPED_INFER, "the SDK declares typed infer");
    CHECK(strcmp(api->get_supported_frameworks(), "echo") == 0, "frameworks %s", api->get_supported_frameworks());

    EXPECT_PLUGIN(api->initialize(NULL), SMI_SUCCESS, (const char*)NULL);
    EXPECT_PLUGIN(api->register_model(NULL, &handle), SMI_ERROR_INVALID_PARAM, "must not be NULL");
    EXPECT_PLUGIN(api->register_model(&metadata, &handle), SMI_ERROR_INVALID_PARAM, "metadata->name must not be NULL");
    metadata.name = "m";
    EXPECT_PLUGIN(api->register_model(&metadata, NULL), SMI_ERROR_INVALID_PARAM, "must not be NULL");
    metadata.config = "{\"delay_us\": \"soon\"}";
    EXPECT_PLUGIN(api->register_model(&metadata, &handle), SMI_ERROR_INVALID_PARAM, "delay_us must be a non-negative integer");
    metadata.config = "{\"delay_us\": ";
    EXPECT_PLUGIN(api->register_model(&metadata, &handle), SMI_ERROR_INVALID_PARAM, "model config is not valid JSON");
    metadata.config = NULL;
    EXPECT_PLUGIN(api->register_model(&metadata, &handle), SMI_SUCCESS, (const char*)NULL);

    /* Unknown handles are errors, never dereferenced. */
    EXPECT_PLUGIN(api->load_model(bogus, NULL), SMI_ERROR_NOT_FOUND, "unknown model handle 0x7777");
    EXPECT_PLUGIN(api->inference(bogus, in, 1, out, &size), SMI_ERROR_NOT_FOUND, "unknown model handle");
    EXPECT_PLUGIN(api->unregister_model(bogus), SMI_ERROR_NOT_FOUND, "unknown model handle");

    /* Inference: state, validation, size protocol. */
    EXPECT_PLUGIN(api->inference(handle, in, sizeof in, out, &size), SMI_ERROR_INVALID_STATE, "not loaded");
    EXPECT_PLUGIN(api->load_model(handle, NULL), SMI_SUCCESS, (const char*)NULL);
    EXPECT_PLUGIN(api->inference(handle, in, sizeof in, out, NULL), SMI_ERROR_INVALID_PARAM, "output_size must not be NULL");
    EXPECT_PLUGIN(api->inference(handle, NULL, 4, out, &size), SMI_ERROR_INVALID_PARAM, "input is NULL");
    size = 4;
    EXPECT_PLUGIN(api->inference(handle, in, sizeof in, NULL, &size), SMI_ERROR_INVALID_PARAM, "output is NULL");
    size = 4;
    EXPECT_PLUGIN(api->inference(handle, in, sizeof in, out, &size), SMI_ERROR_BUFFER_TOO_SMALL, "32 bytes needed, 4 given");
    CHECK(size == sizeof in, "needed %zu", size);
    size = sizeof out;
    EXPECT_PLUGIN(api->inference(handle, in, sizeof in, out, &size), SMI_SUCCESS, (const char*)NULL);
    CHECK(size == sizeof in && memcmp(in, out, size) == 0, "echo of %zu bytes", size);

    /* batch_inference: the SDK runs each request. */
    {
        const void* inputs[2] = {in, in};
        size_t input_sizes[2] = {3, 5}, output_sizes[2] = {sizeof out, 8};
        char second[8];
        void* outputs[2] = {out, second};
        EXPECT_PLUGIN(api->batch_inference(handle, inputs, input_sizes, 2, outputs, output_sizes), SMI_SUCCESS, (const char*)NULL);
        CHECK(output_sizes[0] == 3 && output_sizes[1] == 5, "batch sizes %zu %zu", output_sizes[0], output_sizes[1]);
        EXPECT_PLUGIN(api->batch_inference(handle, NULL, input_sizes, 2, outputs, output_sizes), SMI_ERROR_INVALID_PARAM, "must not be NULL");
    }

    /* Resources: what the plugin cannot honour is said. */
    EXPECT_PLUGIN(api->allocate_resources(handle, &gpu, 1), SMI_ERROR_NOT_SUPPORTED, "cannot honour a Gpu request");
    EXPECT_PLUGIN(api->allocate_resources(handle, NULL, 1), SMI_ERROR_INVALID_PARAM, "requirements is NULL");

    /* Model info: the text size protocol. */
    size = sizeof info;
    EXPECT_PLUGIN(api->get_model_info(handle, info, &size), SMI_ERROR_BUFFER_TOO_SMALL, "text buffer too small");
    CHECK(size > sizeof info, "needed %zu", size);
    EXPECT_PLUGIN(api->get_model_info(handle, info, NULL), SMI_ERROR_INVALID_PARAM, "info_size must not be NULL");

    /* Model I/O: capacities. */
    n_in = 0;
    n_out = 0;
    EXPECT_PLUGIN(plugin->v1_1.get_model_io(handle, NULL, &n_in, NULL, &n_out), SMI_ERROR_BUFFER_TOO_SMALL, "1 inputs and 1 outputs");
    CHECK(n_in == 1 && n_out == 1, "counts %zu %zu", n_in, n_out);
    EXPECT_PLUGIN(plugin->v1_1.get_model_io(handle, specs, &n_in, specs + 1, &n_out), SMI_SUCCESS, (const char*)NULL);
    CHECK(strcmp(specs[0].name, "input_0") == 0 && specs[0].dtype == SMI_DTYPE_BYTES && specs[0].shape[0] == -1, "input spec");
    EXPECT_PLUGIN(plugin->v1_1.get_model_io(handle, NULL, &n_in, specs, &n_out), SMI_ERROR_INVALID_PARAM, "NULL array");

    /* Typed infer validation. */
    memset(&tensor, 0, sizeof tensor);
    tensor.name = "t";
    tensor.dtype = SMI_DTYPE_FP32;
    tensor.ndim = 9;
    tensor.data = in;
    tensor.byte_size = 4;
    n_out = 1;
    EXPECT_PLUGIN(plugin->v1_1.infer(handle, &tensor, 1, NULL, &n_out), SMI_ERROR_INVALID_PARAM,
                  "outputs is NULL");
    {
        smi_tensor_t output;
        memset(&output, 0, sizeof output);
        EXPECT_PLUGIN(plugin->v1_1.infer(handle, &tensor, 1, &output, &n_out), SMI_ERROR_INVALID_PARAM, "has 9 dimensions");
        tensor.ndim = 1;
        tensor.memory_type = SMI_MEMORY_GPU;
        EXPECT_PLUGIN(plugin->v1_1.infer(handle, &tensor, 1, &output, &n_out), SMI_ERROR_NOT_SUPPORTED, "CPU-only");
    }

    EXPECT_PLUGIN(api->unload_model(handle), SMI_SUCCESS, (const char*)NULL);
    EXPECT_PLUGIN(api->unregister_model(handle), SMI_SUCCESS, (const char*)NULL);
    EXPECT_PLUGIN(api->unregister_model(handle), SMI_ERROR_NOT_FOUND, "unknown model handle");
    EXPECT_PLUGIN(api->cleanup(), SMI_SUCCESS, (const char*)NULL);
    dlclose(lib); /* the SDK pinned the library: still mapped, still callable */
    CHECK(strcmp(api->get_plugin_name(), "MLOS C# Echo Plugin") == 0, "callable after dlclose");

    if (mlos_test_failures) {
        fprintf(stderr, "sdk_plugin_test: %d check(s) failed\n", mlos_test_failures);
        return 1;
    }
    printf("sdk_plugin_test: all checks passed\n");
    return 0;
}
