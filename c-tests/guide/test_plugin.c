// test_plugin.c
#include "mlos/smi_spec.h"
#include <assert.h>
#include <dlfcn.h>

void test_plugin_loading(const char* plugin_path) {
    // Load plugin
    void* handle = dlopen(plugin_path, RTLD_LAZY);
    assert(handle != NULL);
    
    // Get init function
    smi_plugin_init_func_t init_func = dlsym(handle, "smi_plugin_init");
    assert(init_func != NULL);
    
    // Initialize plugin
    smi_plugin_t* plugin = init_func();
    assert(plugin != NULL);
    assert(plugin->interface.initialize != NULL);
    
    // Test initialization
    int result = plugin->interface.initialize("test-config");
    assert(result == SMI_SUCCESS);
    
    // Test plugin info
    const char* name = plugin->interface.get_plugin_name();
    assert(name != NULL);
    printf("Plugin name: %s\n", name);
    
    // Cleanup
    if (plugin->interface.cleanup) {
        plugin->interface.cleanup();
    }
    dlclose(handle);
    
    printf("âœ… Plugin loading test passed\n");
}

int main(int argc, char* argv[]) {
    if (argc != 2) {
        printf("Usage: %s <plugin-path>\n", argv[0]);
        return 1;
    }
    
    test_plugin_loading(argv[1]);
    return 0;
}
