// my_plugin.c
#include "mlos/smi_spec.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Plugin state
typedef struct {
    bool initialized;
    char config_path[256];
    void* framework_context;
} my_plugin_state_t;

static my_plugin_state_t g_plugin_state = {0};

// Implementation functions
static smi_status_t my_initialize(const char* config) {
    printf("Initializing My ML Plugin with config: %s\n", config ? config : "default");
    
    if (config) {
        strncpy(g_plugin_state.config_path, config, sizeof(g_plugin_state.config_path) - 1);
    }
    
    // Initialize your ML framework here
    // g_plugin_state.framework_context = initialize_framework();
    
    g_plugin_state.initialized = true;
    return SMI_SUCCESS;
}

static smi_status_t my_cleanup(void) {
    if (!g_plugin_state.initialized) {
        return SMI_ERROR_INVALID_PARAM;
    }
    
    // Cleanup your ML framework
    // cleanup_framework(g_plugin_state.framework_context);
    
    g_plugin_state.initialized = false;
    printf("My ML Plugin cleaned up\n");
    return SMI_SUCCESS;
}

static smi_status_t my_register_model(const smi_model_metadata_t* metadata, 
                                      smi_model_handle_t* handle) {
    if (!metadata || !handle) {
        return SMI_ERROR_INVALID_PARAM;
    }
    
    printf("Registering model: %s (framework: %s)\n", metadata->name, metadata->framework);
    
    // Create model handle
    // *handle = create_model_handle(metadata);
    *handle = (void*)0x12345678; // Mock handle
    
    return SMI_SUCCESS;
}

static smi_status_t my_inference(smi_model_handle_t handle, 
                                 const void* input, size_t input_size,
                                 void* output, size_t* output_size) {
    if (!handle || !input || !output || !output_size) {
        return SMI_ERROR_INVALID_PARAM;
    }
    
    printf("Running inference (input size: %zu)\n", input_size);
    
    // Mock inference - copy input to output
    size_t copy_size = input_size < *output_size ? input_size : *output_size;
    memcpy(output, input, copy_size);
    *output_size = copy_size;
    
    return SMI_SUCCESS;
}

static const char* my_get_plugin_name(void) {
    return "My ML Plugin";
}

static const char* my_get_plugin_version(void) {
    return "1.0.0";
}

// Plugin interface
static smi_plugin_interface_t my_interface = {
    .initialize = my_initialize,
    .cleanup = my_cleanup,
    .register_model = my_register_model,
    .unregister_model = NULL, // Optional
    .load_model = NULL,       // Optional
    .unload_model = NULL,     // Optional
    .inference = my_inference,
    .batch_inference = NULL,  // Optional
    .allocate_resources = NULL, // Optional
    .deallocate_resources = NULL, // Optional
    .get_model_info = NULL,   // Optional
    .get_plugin_name = my_get_plugin_name,
    .get_plugin_version = my_get_plugin_version,
    .get_supported_frameworks = NULL, // Optional
    .get_smi_version = NULL   // Optional
};

// Plugin descriptor
static smi_plugin_t my_plugin = {
    .interface = my_interface,
    .plugin_id = "my-ml-plugin",
    .smi_version = (SMI_VERSION_MAJOR << 16) | (SMI_VERSION_MINOR << 8) | SMI_VERSION_PATCH,
    .private_data = &g_plugin_state
};

// Plugin entry point (required)
smi_plugin_t* smi_plugin_init(void) {
    return &my_plugin;
}
