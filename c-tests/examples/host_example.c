/* The smallest useful C host: link against libmlos_core.so, load a plugin, register and load
 * a model, run one inference, print what the core knows. README.md walks through it. */
#include <stdio.h>
#include <string.h>

#include "mlos/mlos_core.h"

static int fail(const char* what) {
    fprintf(stderr, "%s failed: %s\n", what, mlos_core_last_error());
    return 1;
}

int main(int argc, char** argv) {
    const char* plugin = argc > 1 ? argv[1] : "build/plugins/libmlos_echo_plugin.so";
    mlos_core_t* core;
    char output[256], json[4096];
    size_t output_size = sizeof output, json_size = sizeof json;
    const char* input = "hello, SMI";

    if (mlos_core_create(NULL, &core) != SMI_SUCCESS) return fail("mlos_core_create");
    if (mlos_core_load_plugin(core, plugin, "echo", NULL) != SMI_SUCCESS) return fail("mlos_core_load_plugin");
    if (mlos_core_register_model(core, "demo", "echo", NULL, NULL) != SMI_SUCCESS) return fail("mlos_core_register_model");
    if (mlos_core_load_model(core, "demo") != SMI_SUCCESS) return fail("mlos_core_load_model");
    if (mlos_core_inference(core, "demo", input, strlen(input), output, &output_size) != SMI_SUCCESS)
        return fail("mlos_core_inference");
    printf("inference: %zu bytes back: %.*s\n", output_size, (int)output_size, output);
    if (mlos_core_list_plugins(core, json, &json_size) != SMI_SUCCESS) return fail("mlos_core_list_plugins");
    printf("plugins: %s\n", json);
    mlos_core_destroy(core);
    return 0;
}
