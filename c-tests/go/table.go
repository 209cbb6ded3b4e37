// The smi_plugin_t of the Go plugin, built in C from include/mlos/smi_spec.h. Its entries are C
// functions that check pointers and call the Go functions exported in plugin.go. This file
// exports nothing itself: cgo copies the preamble of a file with //export into two C files, so
// definitions (the table, smi_plugin_init) must live in a file without exports.
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../../include -Wall
#include <stdint.h>
#include <string.h>
#include "mlos/smi_spec.h"

// Go side (plugin.go); prototypes as cgo generates them in _cgo_export.h.
extern int goInitialize(char* config);
extern int goCleanup(void);
extern int goRegisterModel(char* name, char* framework, char* path, char* config, uintptr_t* id);
extern int goUnregisterModel(uintptr_t id);
extern int goLoadModel(uintptr_t id, char* path);
extern int goUnloadModel(uintptr_t id);
extern int goInference(uintptr_t id, void* input, size_t inputSize, void* output, size_t* outputSize);
extern int goModelInfo(uintptr_t id, char* info, size_t* infoSize);

// Handles are the Go side's integer model ids, never Go pointers (cgo forbids C keeping those).
#define ID(handle) ((uintptr_t)(handle))

static smi_status_t go_initialize(const char* config) { return (smi_status_t)goInitialize((char*)config); }
static smi_status_t go_cleanup(void) { return (smi_status_t)goCleanup(); }

static smi_status_t go_register_model(const smi_model_metadata_t* m, smi_model_handle_t* handle) {
    if (m == NULL || handle == NULL || m->name == NULL) return SMI_ERROR_INVALID_PARAM;
    uintptr_t id = 0;
    int rc = goRegisterModel((char*)m->name, (char*)(m->framework ? m->framework : ""),
                             (char*)m->path, (char*)m->config, &id);
    if (rc == SMI_SUCCESS) *handle = (smi_model_handle_t)id;
    return (smi_status_t)rc;
}
static smi_status_t go_unregister_model(smi_model_handle_t h) { return (smi_status_t)goUnregisterModel(ID(h)); }
static smi_status_t go_load_model(smi_model_handle_t h, const char* path) { return (smi_status_t)goLoadModel(ID(h), (char*)path); }
static smi_status_t go_unload_model(smi_model_handle_t h) { return (smi_status_t)goUnloadModel(ID(h)); }

static smi_status_t go_inference(smi_model_handle_t h, const void* input, size_t input_size,
                                 void* output, size_t* output_size) {
    if ((input == NULL && input_size > 0) || output_size == NULL || (output == NULL && *output_size > 0))
        return SMI_ERROR_INVALID_PARAM;
    return (smi_status_t)goInference(ID(h), (void*)input, input_size, output, output_size);
}

static smi_status_t go_get_model_info(smi_model_handle_t h, char* info, size_t* info_size) {
    if (info_size == NULL || (info == NULL && *info_size > 0)) return SMI_ERROR_INVALID_PARAM;
    return (smi_status_t)goModelInfo(ID(h), info, info_size);
}

static const char* go_get_plugin_name(void) { return "MLOS Go Example Plugin"; }
static const char* go_get_plugin_version(void) { return "1.0.0"; }
static const char* go_get_supported_frameworks(void) { return "echo,affine"; }
static uint32_t go_get_smi_version(void) { return SMI_VERSION; }

// The last error, per OS thread: a cgo call runs Go on the calling C thread, so Go sets it
// (mlos_go_set_error) on the same thread that reads it.
static __thread char last_error[512];
static __thread int has_error;
void mlos_go_set_error(const char* message) {
    if (message == NULL) { has_error = 0; return; }
    strncpy(last_error, message, sizeof last_error - 1);
    last_error[sizeof last_error - 1] = 0;
    has_error = 1;
}
static const char* go_get_last_error(void) { return has_error ? last_error : NULL; }

static smi_plugin_t go_plugin = {
    .interface = {
        .initialize = go_initialize,
        .cleanup = go_cleanup,
        .register_model = go_register_model,
        .unregister_model = go_unregister_model,
        .load_model = go_load_model,
        .unload_model = go_unload_model,
        .inference = go_inference,
        .batch_inference = NULL,
        .allocate_resources = NULL,
        .deallocate_resources = NULL,
        .get_model_info = go_get_model_info,
        .get_plugin_name = go_get_plugin_name,
        .get_plugin_version = go_get_plugin_version,
        .get_supported_frameworks = go_get_supported_frameworks,
        .get_smi_version = go_get_smi_version,
    },
    .plugin_id = "go-example",
    .smi_version = SMI_VERSION,
    .private_data = NULL,
    .v1_1 = {
        .capabilities = SMI_CAP_THREAD_SAFE,
        .get_model_io = NULL,
        .infer = NULL,
        .get_last_error = go_get_last_error,
    },
};

smi_plugin_t* smi_plugin_init(void) { return &go_plugin; }
*/
import "C"
