/* An installed MLOS Native seen from a C host built with pkg-config alone (mlos-core.pc):
 * the installed echo plugin, one inference. Prints "ok" and exits 0 when the answer is right. */
#include <stdio.h>
#include <string.h>

#include "mlos/mlos_core.h"

int main(int argc, char** argv) {
    mlos_core_t* core;
    char plugin[4096], out[64];
    size_t size = sizeof out;
    if (argc < 2) return 2;
    snprintf(plugin, sizeof plugin, "%s/libmlos_echo_plugin.so", argv[1]); /* pkg-config --variable=plugindir mlos-core */
    if (mlos_core_create(NULL, &core) != SMI_SUCCESS || mlos_core_load_plugin(core, plugin, "echo", NULL) != SMI_SUCCESS ||
        mlos_core_register_model(core, "m", "echo", NULL, NULL) != SMI_SUCCESS || mlos_core_load_model(core, "m") != SMI_SUCCESS ||
        mlos_core_inference(core, "m", "pkg-config", 10, out, &size) != SMI_SUCCESS) {
        fprintf(stderr, "FAIL: %s\n", mlos_core_last_error());
        return 1;
    }
    if (size != 10 || memcmp(out, "pkg-config", 10) != 0) {
        fprintf(stderr, "FAIL: echo answered %zu bytes\n", size);
        return 1;
    }
    mlos_core_destroy(core);
    printf("ok: core version 0x%x\n", (unsigned)mlos_core_version());
    return 0;
}
