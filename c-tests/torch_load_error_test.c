/* When libtorch cannot be loaded, the Torch plugin's error names the real cause and the fix.
 * Pointed (libtorch_dir) at the publish folder, whose TorchSharp shim is the pristine one that
 * still requires GLIBCXX_3.4.32, initialize must fail with that cause, not crash. Its own
 * process: a failed libtorch load cannot be undone. */
#include "test_support.h"

int main(int argc, char** argv) {
    mlos_api_t api;
    mlos_core_t* core;
    char plugin[4096], config[4096];
    if (argc != 3) {
        fprintf(stderr, "usage: %s <build-dir> <folder-with-pristine-shim>\n", argv[0]);
        return 2;
    }
    mlos_api_load(&api, argv[1]);
    EXPECT_OK(&api, api.create(NULL, &core));
    snprintf(config, sizeof config, "{\"libtorch_dir\":\"%s\"}", argv[2]);
    EXPECT_STATUS(&api, api.load_plugin(core, mlos_path(plugin, sizeof plugin, argv[1], "plugins/libmlos_torch_plugin.so"), NULL, config),
                  SMI_ERROR_RUNTIME, "GLIBCXX_3.4.32");
    CHECK(strstr(api.last_error(), "elf_weak_version") != NULL, "the message names the fix: %s", api.last_error());
    EXPECT_STATUS(&api, api.load_plugin(core, plugin, NULL, "{\"libtorch_dir\":\"/nonexistent/libtorch\"}"), SMI_ERROR_RUNTIME,
                  "libtorch_cpu.so: no such file");
    EXPECT_OK(&api, api.destroy(core));
    if (mlos_test_failures) return 1;
    printf("torch_load_error_test: all checks passed\n");
    return 0;
}
