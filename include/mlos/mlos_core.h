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
 *  - Every function is thread-safe. Calls into a plugin that does not declare
 *    SMI_CAP_THREAD_SAFE are serialised per plugin. No core-wide lock is held while plugin
 *    code runs: a slow plugin's initialize or register_model holds up no other plugin.
 *  - Ids (model_id, plugin_id) are UTF-8 text compared exactly; bytes that are not UTF-8 fail
 *    with SMI_ERROR_INVALID_PARAM ("... is not valid UTF-8 at byte N", N counted from 0).
 *    Paths are bytes: they reach dlopen and the plugin exactly as given.
 *  - Plugins are distrusted. Everything a plugin returns is checked against what the core
 *    passed: counts and sizes within the capacities given, output tensors with a name, a
 *    known dtype, ndim <= SMI_MAX_DIMS and bytes enough for their shape, caller buffers left
 *    in place, plugin memory with a release. A breach fails the call with SMI_ERROR_RUNTIME
 *    ("plugin 'x' infer broke the SMI contract: ...") after the plugin's allocations are
 *    released. A plugin status outside smi_status_t becomes SMI_ERROR_RUNTIME with the raw
 *    value in the message. Plugin strings are read up to 4 KiB.
 *  - A model handle is used only while registered: every call on it (inference, model info,
 *    resources, load, unload) is counted in flight, none starts once unregister has begun,
 *    and unregister returns only after the running ones end.
 *  - Time is bounded where the core waits: unload, unregister and destroy wait for running
 *    calls (and admin calls for the gate of a serialised plugin) at most unload_timeout_ms
 *    (mlos_core_create config, default 30000), then fail with SMI_ERROR_BUSY naming what
 *    still runs, leaving the model as it was. A typed request on a model registered with
 *    "timeout_ms" carries a deadline to its plugin (SMI 1.2 infer_with_deadline) and fails
 *    with SMI_ERROR_TIMEOUT once past it. A plugin call that never returns still blocks the
 *    thread that made it: only the plugin can stop its own code.
 *  - Re-entrancy: a plugin may call back into the core from inside a call. Inference on a
 *    model of a thread-safe plugin is served (on the calling thread, never through a batcher);
 *    everything else that could wait for the very call it is made from (inference on a
 *    serialised plugin, load_plugin, register, load, unload, unregister, resources,
 *    model_info, destroy) fails with SMI_ERROR_INVALID_STATE ("re-entrant call from plugin
 *    'x': ..."). mlos_core_version, mlos_core_last_error, list_* and release_outputs are served.
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
 * Owned by the library; valid until the next failing call on this thread, and freed when
 * the thread exits (a host with a thread per connection does not grow). At most 4 KiB.
 */
const char* mlos_core_last_error(void);

/**
 * Creates a core. config_json may be NULL or "" (no plugins) or
 * {"plugins":[{"path":"build/plugins/libmlos_echo_plugin.so","id":"echo","config":{...},
 *  "isolation":"process","shared_memory_mb":2048}],"unload_timeout_ms":30000,
 *  "default_isolation":"none"} (isolation: see mlos_core_load_plugin_with_options).
 * Malformed JSON or an unknown key fails with SMI_ERROR_INVALID_PARAM.
 */
mlos_status_t mlos_core_create(const char* config_json, mlos_core_t** core);

/**
 * Unregisters every model, cleans every plugin up and frees the core. New calls on the core
 * fail with SMI_ERROR_INVALID_STATE from the moment it starts. When calls on some model are
 * still running after unload_timeout_ms, it fails with SMI_ERROR_BUSY naming them: the core
 * stays (refusing new work) and a later mlos_core_destroy finishes the job.
 */
mlos_status_t mlos_core_destroy(mlos_core_t* core);

/**
 * dlopen()s a plugin, calls smi_plugin_init, checks it and calls initialize(config), here or in
 * a host process of its own, as the core's default isolation says (see
 * mlos_core_load_plugin_with_options). plugin_id: NULL for the plugin's own plugin_id. config: passed to initialize (may be NULL).
 * Fails with NOT_FOUND (no file, or no smi_plugin_init export), VERSION_MISMATCH (other
 * SMI major), INVALID_PARAM (a required entry is NULL; the path is a directory, FIFO, device
 * or anything but a regular file, which is never opened; not a loadable library),
 * ALREADY_EXISTS (id taken, or the library already loaded), or the status initialize returned.
 */
mlos_status_t mlos_core_load_plugin(mlos_core_t* core, const char* path,
                                    const char* plugin_id, const char* config);

/**
 * mlos_core_load_plugin with options_json (NULL or {"isolation":"process"|"none"|"auto",
 * "shared_memory_mb":N}). "process" runs the plugin in a mlos_plugin_host process of its own
 * (found beside libmlos_core.so, or at $MLOS_PLUGIN_HOST): smi_plugin_init and every entry run
 * there, tensor data crosses in shared memory, and a crash of the plugin fails only the calls it
 * was running (SMI_ERROR_BUSY, naming the signal) instead of this process. "shared_memory_mb"
 * bounds one call's request plus answer (default 2048). Left out, isolation is the core's
 * default: "default_isolation" of the mlos_core_create config, else $MLOS_DEFAULT_ISOLATION,
 * else "auto": in process for the first-party C# plugins (by file name: libmlos_onnx_plugin.so,
 * libmlos_torch_plugin.so, libmlos_echo_plugin.so), in a host of its own for every other plugin,
 * the Python bridge included; mlos_core_load_plugin follows the same default. A plugin that
 * calls back into the core cannot be isolated: load it with "isolation":"none".
 */
mlos_status_t mlos_core_load_plugin_with_options(mlos_core_t* core, const char* path,
                                                 const char* plugin_id, const char* config,
                                                 const char* options_json);

/** Loaded plugins as JSON: {"status":"success","plugins":[{"id","name","version",...}],"total":N}. */
mlos_status_t mlos_core_list_plugins(mlos_core_t* core, char* json, size_t* json_size);

/** Registered models as JSON: {"status":"success","models":[{"id","plugin_id","status",...}],"total":N}. */
mlos_status_t mlos_core_list_models(mlos_core_t* core, char* json, size_t* json_size);

/**
 * One model as JSON, with input/output specs when its plugin reports them. It says what it
 * can: a part the plugin cannot give (specs of a model not loaded yet, a broken answer) is
 * left out, with the reason in "io_error" / "info_error". NOT_FOUND once unregistered.
 */
mlos_status_t mlos_core_model_info(mlos_core_t* core, const char* model_id,
                                   char* json, size_t* json_size);

/**
 * Registers a model with a plugin (its register_model). path may be NULL.
 * options_json may be NULL or {"framework":"onnx","version":"1","config":{...},
 * "dynamic_batching":{"max_batch_size":32,"max_queue_delay_us":500}|true|false};
 * "config" reaches the plugin as smi_model_metadata_t::config. Dynamic batching is on by
 * default where it is safe (typed infer, SMI_CAP_BATCHING, every input and output with a free
 * dim 0 (-1) and a fixed-size dtype: max_batch_size 64, never waiting) and off elsewhere;
 * "dynamic_batching":false turns it off, true or an object asks for it, and then
 * mlos_core_load_model refuses a model whose inputs and outputs do not all have a free dim 0.
 * With batching, mlos_core_infer calls on the model are merged along dim 0: a call that finds
 * the model idle runs at once on the calling thread; one that finds a batch running waits, and
 * may be woken to run the next batch (its own request and those queued behind it) on its
 * thread. One batch runs per model at a time: a batch that never returns holds up the requests
 * queued behind it on that model ("timeout_ms" bounds them where the plugin honours deadlines). "timeout_ms":N (N >= 1) bounds each typed request from the
 * moment the core takes it, queueing included (see mlos_core_infer); a plugin without SMI 1.2
 * infer_with_deadline cannot honour it, and the registration fails with NOT_SUPPORTED.
 * Triton's model-config rules, as options: "instances":N (1-64) independent instances of the
 * model, requests to the least busy; "max_rows":N at most N rows along dim 0 per request
 * (max_batch_size); "optional_inputs":["name",...] inputs a request may leave out;
 * "shapes":{"name":[-1,16],...} whole shapes that fix the dims the plugin's specs leave free;
 * "reshape":[{"name":"x","dims":[4],"model_dims":[2,2]}] a tensor callers give and get as
 * dims while the plugin takes and gives model_dims (after dim 0 when max_rows > 0; one -1 per
 * side is worked out from the element count; mlos_core_load_model refuses one that does not
 * fit the plugin's specs).
 * The id is reserved while the plugin's register_model runs (a second registration of it
 * fails with ALREADY_EXISTS); the model is visible once this returns.
 */
mlos_status_t mlos_core_register_model(mlos_core_t* core, const char* model_id,
                                       const char* plugin_id, const char* path,
                                       const char* options_json);

/**
 * Loads a registered model (a plugin without load_model needs no load: it succeeds).
 * Idempotent. While the plugin loads, the model's status is "loading" and requests on it fail
 * with SMI_ERROR_BUSY.
 */
mlos_status_t mlos_core_load_model(mlos_core_t* core, const char* model_id);

/**
 * Unloads a model. New requests on it fail with SMI_ERROR_BUSY at once; the call waits
 * for the requests admitted before it began (requests refused meanwhile never hold it up),
 * then the plugin releases the model. Idempotent. After unload_timeout_ms with requests still
 * running: SMI_ERROR_BUSY naming them, and the model stays loaded.
 */
mlos_status_t mlos_core_unload_model(mlos_core_t* core, const char* model_id);

/**
 * Unloads if needed, then unregisters. From the moment it begins no call reaches the model's
 * handle; it waits for the calls already running (at most unload_timeout_ms: then
 * SMI_ERROR_BUSY, and the model stays as it was). The id is free again when it returns.
 */
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
 * holds what the plugin set (the size needed, where it says). A success with *output_size
 * beyond the capacity is the plugin's breach: SMI_ERROR_RUNTIME. timeout_ms does not apply:
 * untyped inference has no deadline entry.
 */
mlos_status_t mlos_core_inference(mlos_core_t* core, const char* model_id,
                                  const void* input, size_t input_size,
                                  void* output, size_t* output_size);

/**
 * Typed inference (SMI 1.1 plugins), with the output ownership rule of smi_spec.h:
 * outputs with data set are caller buffers; outputs with data NULL are allocated by the
 * plugin and must be freed with mlos_core_release_outputs (or each one's release).
 * Plugins without typed infer fail with SMI_ERROR_NOT_SUPPORTED. On a model registered with
 * dynamic batching (the default where the model can batch, see mlos_core_register_model) the
 * call blocks until the batch holding this request has run, on this thread or another.
 * Inputs are checked before any plugin sees them, and fail with SMI_ERROR_INVALID_PARAM and a
 * message naming the input: a name, ndim <= SMI_MAX_DIMS, dims >= 0 whose product fits in 64
 * bits, byte_size equal to the element count times the element size, and for BYTES (per element
 * a little-endian uint32 length, then the bytes) length prefixes that exactly fill byte_size.
 * Outputs are checked as the conventions above say; on any failure no output is left with a
 * release set. A model registered with "timeout_ms" fails with SMI_ERROR_TIMEOUT once the
 * request passes it (the ONNX Runtime plugin stops the run itself).
 */
mlos_status_t mlos_core_infer(mlos_core_t* core, const char* model_id,
                              const smi_tensor_t* inputs, size_t num_inputs,
                              smi_tensor_t* outputs, size_t* num_outputs);

/**
 * mlos_core_infer of the outputs named in output_names[0..num_output_names) only (each once;
 * num_output_names 0 means every output, as mlos_core_infer). Every output slot must be empty
 * (data NULL): the outputs are allocated by the plugin, come back first in *num_outputs slots,
 * and are freed with mlos_core_release_outputs. A plugin with SMI 1.3 infer_selected is asked
 * for those outputs alone; for an older one the core releases the others before returning. A
 * name the model does not have, or one given twice, fails with SMI_ERROR_INVALID_PARAM and
 * nothing allocated. The same check of the inputs as mlos_core_infer, which (for a model whose
 * plugin gave its specs, SMI 1.3 or later) also holds them to the model's input names, dtypes
 * and fixed dims.
 */
mlos_status_t mlos_core_infer_selected(mlos_core_t* core, const char* model_id,
                                       const smi_tensor_t* inputs, size_t num_inputs,
                                       const char* const* output_names, size_t num_output_names,
                                       smi_tensor_t* outputs, size_t* num_outputs);

/**
 * Calls release on every output that has one (NULL-safe), then clears it (release, data,
 * byte_size): calling it twice on the same array frees nothing the second time.
 */
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
