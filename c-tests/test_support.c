#include "test_support.h"

#include <dlfcn.h>
#include <unistd.h>

int mlos_test_failures = 0;

const char* mlos_path(char* buffer, size_t size, const char* build_dir, const char* relative) {
    snprintf(buffer, size, "%s/%s", build_dir, relative);
    return buffer;
}

#define MLOS_RESOLVE(api, field, symbol)                                          \
    do {                                                                          \
        *(void**)(&(api)->field) = dlsym((api)->library, symbol);                 \
        if ((api)->field == NULL) {                                               \
            fprintf(stderr, "libmlos_core.so lacks %s: %s\n", symbol, dlerror()); \
            exit(2);                                                              \
        }                                                                         \
    } while (0)

void mlos_api_load(mlos_api_t* api, const char* build_dir) {
    char path[4096];
    memset(api, 0, sizeof *api);
    api->library = dlopen(mlos_path(path, sizeof path, build_dir, "libmlos_core.so"), RTLD_NOW);
    if (api->library == NULL) {
        fprintf(stderr, "cannot load %s: %s\n", path, dlerror());
        exit(2);
    }
    MLOS_RESOLVE(api, version, "mlos_core_version");
    MLOS_RESOLVE(api, smi_version, "mlos_core_smi_version");
    MLOS_RESOLVE(api, last_error, "mlos_core_last_error");
    MLOS_RESOLVE(api, create, "mlos_core_create");
    MLOS_RESOLVE(api, destroy, "mlos_core_destroy");
    MLOS_RESOLVE(api, load_plugin, "mlos_core_load_plugin");
    MLOS_RESOLVE(api, load_plugin_with_options, "mlos_core_load_plugin_with_options");
    MLOS_RESOLVE(api, list_plugins, "mlos_core_list_plugins");
    MLOS_RESOLVE(api, list_models, "mlos_core_list_models");
    MLOS_RESOLVE(api, model_info, "mlos_core_model_info");
    MLOS_RESOLVE(api, register_model, "mlos_core_register_model");
    MLOS_RESOLVE(api, load_model, "mlos_core_load_model");
    MLOS_RESOLVE(api, unload_model, "mlos_core_unload_model");
    MLOS_RESOLVE(api, unregister_model, "mlos_core_unregister_model");
    MLOS_RESOLVE(api, allocate_resources, "mlos_core_allocate_resources");
    MLOS_RESOLVE(api, deallocate_resources, "mlos_core_deallocate_resources");
    MLOS_RESOLVE(api, inference, "mlos_core_inference");
    MLOS_RESOLVE(api, infer, "mlos_core_infer");
    MLOS_RESOLVE(api, infer_selected, "mlos_core_infer_selected");
    MLOS_RESOLVE(api, release_outputs, "mlos_core_release_outputs");
    MLOS_RESOLVE(api, smi_layout, "mlos_core_smi_layout");
}

smi_plugin_t* mlos_open_plugin(const char* path) {
    smi_plugin_init_func_t init;
    smi_plugin_t* plugin;
    void* lib = dlopen(path, RTLD_NOW);
    if (!lib) {
        fprintf(stderr, "%s\n", dlerror());
        exit(2);
    }
    *(void**)&init = dlsym(lib, SMI_PLUGIN_INIT_SYMBOL);
    plugin = init ? init() : NULL;
    if (!plugin) {
        fprintf(stderr, "%s: no smi_plugin_init, or it returned NULL\n", path);
        exit(2);
    }
    return plugin;
}

long mlos_rss_bytes(void) {
    long pages = 0, resident = 0;
    FILE* f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(f);
    }
    return resident * sysconf(_SC_PAGESIZE);
}
