// An installed MLOS Native seen from a C++ host: the installed echo and ONNX Runtime plugins,
// in process and in the installed plugin host (found from lib/libmlos_core.so at ../bin), and
// the installed demo model. Prints "ok" and exits 0 when every answer is right.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "mlos/mlos_core.h"

static int failed(const char* what) {
    std::fprintf(stderr, "FAIL %s: %s\n", what, mlos_core_last_error());
    return 1;
}

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: cmake_host <prefix>\n");
        return 2;
    }
    const std::string prefix = argv[1], plugins = MLOS_PLUGIN_DIR;
    mlos_core_t* core = nullptr;
    if (mlos_core_create(nullptr, &core) != SMI_SUCCESS) return failed("create");

    // The C# echo plugin, once in this process and once in a host process of its own.
    const std::string echo = plugins + "/libmlos_echo_plugin.so";
    if (mlos_core_load_plugin_with_options(core, echo.c_str(), "echo", nullptr, "{\"isolation\":\"none\"}") != SMI_SUCCESS) return failed("load echo");
    if (mlos_core_load_plugin_with_options(core, echo.c_str(), "echo-isolated", nullptr, "{\"isolation\":\"process\"}") != SMI_SUCCESS)
        return failed("load echo isolated (the plugin host beside the installed library)");
    for (const char* plugin : {"echo", "echo-isolated"}) {
        const std::string model = std::string("m-") + plugin;
        if (mlos_core_register_model(core, model.c_str(), plugin, nullptr, nullptr) != SMI_SUCCESS) return failed("register echo");
        if (mlos_core_load_model(core, model.c_str()) != SMI_SUCCESS) return failed("load echo model");
        char out[64];
        size_t size = sizeof out;
        if (mlos_core_inference(core, model.c_str(), "installed", 9, out, &size) != SMI_SUCCESS) return failed("echo");
        if (size != 9 || std::memcmp(out, "installed", 9) != 0) return failed("echo answer");
    }

    // The ONNX Runtime plugin (its libonnxruntime.so beside it) on the installed demo MLP.
    const std::string onnx = plugins + "/libmlos_onnx_plugin.so", mlp = prefix + "/share/mlos/models/mlp.onnx";
    if (mlos_core_load_plugin(core, onnx.c_str(), nullptr, nullptr) != SMI_SUCCESS) return failed("load onnx");
    if (mlos_core_register_model(core, "mlp", "onnx-runtime", mlp.c_str(), nullptr) != SMI_SUCCESS) return failed("register mlp");
    if (mlos_core_load_model(core, "mlp") != SMI_SUCCESS) return failed("load mlp");
    std::vector<float> x(16, 0.5f);
    smi_tensor_t in{};
    in.name = "input";
    in.dtype = SMI_DTYPE_FP32;
    in.ndim = 2;
    in.shape[0] = 1;
    in.shape[1] = 16;
    in.data = x.data();
    in.byte_size = x.size() * sizeof(float);
    smi_tensor_t out{};
    size_t n = 1;
    if (mlos_core_infer(core, "mlp", &in, 1, &out, &n) != SMI_SUCCESS) return failed("infer mlp");
    bool shaped = n == 1 && out.dtype == SMI_DTYPE_FP32 && out.ndim == 2 && out.shape[0] == 1 && out.shape[1] == 4 && out.byte_size == 16;
    bool finite = shaped && std::isfinite(static_cast<const float*>(out.data)[0]);
    mlos_core_release_outputs(&out, n);
    if (!shaped || !finite) return failed("mlp answer");

    if (mlos_core_destroy(core) != SMI_SUCCESS) return failed("destroy");
    std::printf("ok: MlosNative %s from %s\n", MLOS_VERSION, prefix.c_str());
    return 0;
}
