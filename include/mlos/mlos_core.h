/**
 * @file mlos_core.h
 * @brief Host C API of libmlos_core.so: load SMI plugins, register models, run inference.
 *
 * Conventions:
 *  - Every function returning mlos_status_t returns SMI_SUCCESS (0) or a negative
 *    smi_status_t; on failure mlos_core_last_error() on the same thread says why, and
 *    out-parameters are left untouched unless the function says otherwise.
 *  - Strings passed in are borrowed for the call. Text written out uses the size
 *    protocol: on entry *size is the buffer's capacity; on success it is the bytes written,
 *    NUL terminator included; when too small the call fails with SMI_ERROR_BUFFER_TOO_SMALL
 *    and *size is the capacity needed (pass NULL, 0 to ask).
 *  - Every function is thread-safe, except mlos_core_destroy, which must not race with
 *    other calls on the same core. Calls into a plugin that does not declare
 *    SMI_CAP_THREAD_SAFE are serialised per plugin.
 *  - Plugins are never unloaded (dlopen with RTLD_NODELETE); a plugin library may be
 *    owned by one core at a time.
 */
#ifndef MLOS_CORE_H
#define MLOS_CORE_H

#include "mlos/smi_spec.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Version of this API, packed like SMI versions. */
#define MLOS_CORE_VERSION_MAJOR 0
#define MLOS_CORE_VERSION_MINOR 1
#define MLOS_CORE_VERSION_PATCH 0
#define MLOS_CORE_VERSION \
    SMI_MAKE_VERSION(MLOS_CORE_VERSION_MAJOR, MLOS_CORE_VERSION_MINOR, MLOS_CORE_VERSION_PATCH)

/** Status of every call: an smi_status_t. */
typedef smi_status_t mlos_status_t;

/** Opaque core. A destroyed or forged pointer is reported as SMI_ERROR_INVALID_PARAM, never dereferenced. */
typedef struct mlos_core mlos_core_t;

/** MLOS_CORE_VERSION of the loaded library. */
uint32_t mlos_core_version(void);

/** SMI_VERSION the library speaks: it loads plugins of the same major version. */
uint32_t mlos_core_smi_version(void);

/**
 * Message of the last failed call on this thread, or NULL if none failed yet.
 * Owned by the library; valid until the next failing call on this thread.
 */
const char* mlos_core_last_error(void);

/**
 * Creates a core. config_json may be NULL or "" (no plugins) or
 * {"plugins":[{"path":"build/plugins/libmlos_echo_plugin.so","id":"echo","config":{...}}]}.
 * Malformed JSON or an unknown key fails with SMI_ERROR_INVALID_PARAM.
 */
mlos_status_t mlos_core_create(const char* config_json, mlos_core_t** core);

/** Unregisters every model, cleans every plugin up and frees the core. */
mlos_status_t mlos_core_destroy(mlos_core_t* core);

/**
 * dlopen()s a plugin, calls smi_plugin_init, checks it and calls initialize(config).
 * plugin_id: NULL for the plugin's own plugin_id. config: passed to initialize (may be NULL).
 * Fails with NOT_FOUND (no file, or no smi_plugin_init export), VERSION_MISMATCH (other
 * SMI major), INVALID_PARAM (a required entry is NULL), ALREADY_EXISTS (id taken, or the
 * library already loaded), or the status initialize returned.
 */
mlos_status_t mlos_core_load_plugin(mlos_core_t* core, const char* path,
                                    const char* plugin_id, const char* config);

/** Loaded plugins as JSON: {"status":"success","plugins":[{"id","name","version",...}],"total":N}. */
mlos_status_t mlos_core_list_plugins(mlos_core_t* core, char* json, size_t* json_size);

/** Registered models as JSON: {"status":"success","models":[{"id","plugin_id","status",...}],"total":N}. */
mlos_status_t mlos_core_list_models(mlos_core_t* core, char* json, size_t* json_size);

/** One model as JSON, with input/output specs when its plugin reports them. */
mlos_status_t mlos_core_model_info(mlos_core_t* core, const char* model_id,
                                   char* json, size_t* json_size);

/**
 * Registers a model with a plugin (its register_model). path may be NULL.
 * options_json may be NULL or {"framework":"onnx","version":"1","config":{...},
 * "dynamic_batching":{"max_batch_size":32,"max_queue_delay_us":500}};
 * "config" reaches the plugin as smi_model_metadata_t::config. With "dynamic_batching",
 * mlos_core_infer calls on the model are queued and merged along dim 0 (the calling thread
 * waits for its batch); mlos_core_load_model refuses a model whose inputs and outputs do not
 * all have a free dim 0 (-1).
 */
mlos_status_t mlos_core_register_model(mlos_core_t* core, const char* model_id,
                                       const char* plugin_id, const char* path,
                                       const char* options_json);

/** Loads a registered model (a plugin without load_model needs no load: it succeeds). Idempotent. */
mlos_status_t mlos_core_load_model(mlos_core_t* core, const char* model_id);

/**
 * Unloads a model. New requests on it fail with SMI_ERROR_BUSY at once; the call waits
 * for running requests to finish before the plugin releases the model. Idempotent.
 */
mlos_status_t mlos_core_unload_model(mlos_core_t* core, const char* model_id);

/** Unloads if needed, then unregisters. The id is free again when it returns. */
mlos_status_t mlos_core_unregister_model(mlos_core_t* core, const char* model_id);

/**
 * Passes resource requests for a model to its plugin's allocate_resources (CPU threads, GPU
 * device, GPU memory...). A plugin without that entry fails with SMI_ERROR_NOT_SUPPORTED; a
 * request the plugin cannot honour fails with the plugin's status and message.
 */
mlos_status_t mlos_core_allocate_resources(mlos_core_t* core, const char* model_id,
                                           const smi_resource_req_t* requirements, size_t num_requirements);

/** Gives back what mlos_core_allocate_resources took (a plugin without the entry: no-op). */
mlos_status_t mlos_core_deallocate_resources(mlos_core_t* core, const char* model_id);

/**
 * Untyped inference on a loaded model: input and output go to the plugin's inference
 * entry as they are (no copy). On entry *output_size is the capacity of output; on
 * success the bytes written. When the plugin reports the buffer too small, *output_size
 * holds what the plugin set (the size needed, where it says).
 */
mlos_status_t mlos_core_inference(mlos_core_t* core, const char* model_id,
                                  const void* input, size_t input_size,
                                  void* output, size_t* output_size);

/**
 * Typed inference (SMI 1.1 plugins), with the output ownership rule of smi_spec.h:
 * outputs with data set are caller buffers; outputs with data NULL are allocated by the
 * plugin and must be freed with mlos_core_release_outputs (or each one's release).
 * Plugins without typed infer fail with SMI_ERROR_NOT_SUPPORTED. On a model registered with
 * dynamic batching the call blocks until the batch holding this request has run.
 * Inputs are checked before any plugin sees them, and fail with SMI_ERROR_INVALID_PARAM and a
 * message naming the input: a name, ndim <= SMI_MAX_DIMS, dims >= 0 whose product fits in 64
 * bits, byte_size equal to the element count times the element size, and for BYTES (per element
 * a little-endian uint32 length, then the bytes) length prefixes that exactly fill byte_size.
 */
mlos_status_t mlos_core_infer(mlos_core_t* core, const char* model_id,
                              const smi_tensor_t* inputs, size_t num_inputs,
                              smi_tensor_t* outputs, size_t* num_outputs);

/** Calls release on every output that has one (NULL-safe). */
void mlos_core_release_outputs(smi_tensor_t* outputs, size_t num_outputs);

/**
 * Offsets and sizes of the library's own mirror of every SMI struct, one
 * "struct.field offset" or "struct size" per line: what the ABI layout test checks.
 */
mlos_status_t mlos_core_smi_layout(char* text, size_t* text_size);

#ifdef __cplusplus
}
#endif

#endif /* MLOS_CORE_H */
