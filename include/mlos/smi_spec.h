/**
 * @file smi_spec.h
 * @brief Standard Model Interface (SMI): the plugin ABI of MLOS Core.
 *
 * A plugin is a shared library exporting one symbol:
 *
 *     smi_plugin_t* smi_plugin_init(void);
 *
 * The host dlopen()s the library, calls smi_plugin_init() once, checks
 * smi_plugin_t::smi_version and then calls through the function table.
 *
 * ABI rules (read before editing):
 *  - The file is append-only. Never reorder, remove, resize or retype a field.
 *    New entries go at the end of the newest block, in a new block per minor version.
 *  - A host reads a block only when the plugin's smi_version says it exists
 *    (same major, minor >= the block's minor), and treats any NULL entry as absent.
 *  - A major version change is a break: hosts refuse plugins of another major.
 *  - Strings returned by a plugin are owned by the plugin and stay valid until
 *    cleanup() unless the entry says otherwise. Pointers passed in by the host are
 *    borrowed for the duration of the call only.
 *  - No entry may let a C++ exception, a Go panic or a managed exception escape:
 *    every failure is a status code.
 *
 * Valid C99 and C++.
 */
#ifndef MLOS_SMI_SPEC_H
#define MLOS_SMI_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @name Version of this header. A plugin reports the version it was built against. */
/**@{*/
#define SMI_VERSION_MAJOR 1
#define SMI_VERSION_MINOR 3
#define SMI_VERSION_PATCH 0
/** Packs a version the way smi_plugin_t::smi_version holds it. */
#define SMI_MAKE_VERSION(major, minor, patch) \
    ((uint32_t)(((uint32_t)(major) << 16) | ((uint32_t)(minor) << 8) | (uint32_t)(patch)))
#define SMI_VERSION SMI_MAKE_VERSION(SMI_VERSION_MAJOR, SMI_VERSION_MINOR, SMI_VERSION_PATCH)
#define SMI_VERSION_GET_MAJOR(v) (((uint32_t)(v) >> 16) & 0xFFFFu)
#define SMI_VERSION_GET_MINOR(v) (((uint32_t)(v) >> 8) & 0xFFu)
#define SMI_VERSION_GET_PATCH(v) ((uint32_t)(v) & 0xFFu)
/**@}*/

/** Status of every SMI call. 0 is success; failures are negative. */
typedef enum {
    SMI_SUCCESS = 0,
    SMI_ERROR_INVALID_PARAM = -1,   /**< NULL or malformed argument */
    SMI_ERROR_OUT_OF_MEMORY = -2,   /**< allocation failed, or (SMI 1.0 plugins) an output buffer too small */
    SMI_ERROR_NOT_FOUND = -3,       /**< unknown model, plugin or name */
    SMI_ERROR_NOT_SUPPORTED = -4,   /**< the entry or option is not implemented */
    SMI_ERROR_RUNTIME = -5,         /**< the framework failed; see get_last_error */
    /* Added in SMI 1.1 (values only; a 1.0 host maps unknown codes to RUNTIME). */
    SMI_ERROR_BUFFER_TOO_SMALL = -6, /**< output buffer too small; the size out-parameter holds the size needed */
    SMI_ERROR_INVALID_STATE = -7,   /**< e.g. inference on a model that is not loaded */
    SMI_ERROR_ALREADY_EXISTS = -8,  /**< duplicate id */
    SMI_ERROR_VERSION_MISMATCH = -9, /**< plugin built for another SMI major version */
    SMI_ERROR_BUSY = -10,           /**< overloaded or being unloaded; retry later */
    /* Added in SMI 1.2. */
    SMI_ERROR_TIMEOUT = -11         /**< the call ran past its deadline and was stopped */
} smi_status_t;

/** Opaque per-model handle created by the plugin in register_model. */
typedef void* smi_model_handle_t;

/**
 * Model description passed to register_model. Every field is borrowed for the
 * duration of the call: a plugin that needs a string later copies it.
 * name and framework are never NULL (framework is "" when unknown); the others may be.
 */
typedef struct {
    const char* name;        /**< model id, unique within the host */
    const char* framework;   /**< e.g. "onnx", "pytorch"; "" when unknown */
    const char* version;     /**< model version string; may be NULL */
    const char* path;        /**< model file or folder; may be NULL until load_model */
    const char* config;      /**< JSON options (inputs, outputs, device...); may be NULL */
} smi_model_metadata_t;

/** Kind of resource in an allocate_resources request. */
typedef enum {
    SMI_RESOURCE_CPU_THREADS = 0, /**< amount = number of threads */
    SMI_RESOURCE_MEMORY = 1,      /**< amount = bytes of host memory */
    SMI_RESOURCE_GPU = 2,         /**< device_id = GPU ordinal; amount ignored */
    SMI_RESOURCE_GPU_MEMORY = 3   /**< device_id = GPU ordinal; amount = bytes */
} smi_resource_type_t;

/** One resource request. */
typedef struct {
    smi_resource_type_t type;
    int32_t device_id;
    uint64_t amount;
} smi_resource_req_t;

/**
 * The SMI 1.0 function table: the guide's fifteen entries, in this order.
 * Entries marked optional may be NULL; a host treats NULL as "not needed"
 * (load_model, unload_model, deallocate_resources) or "not supported".
 */
typedef struct {
    /* Plugin lifecycle */
    /** Required. config: JSON options or any plain label (e.g. "test-config"); may be NULL. Borrowed. */
    smi_status_t (*initialize)(const char* config);
    /** Optional. Releases everything the plugin holds. No other call may run concurrently. */
    smi_status_t (*cleanup)(void);

    /* Model management */
    /** Required. metadata is borrowed; *handle receives the plugin's handle for the model. */
    smi_status_t (*register_model)(const smi_model_metadata_t* metadata,
                                   smi_model_handle_t* handle);
    /** Optional. Forgets the model; handle is invalid afterwards. */
    smi_status_t (*unregister_model)(smi_model_handle_t handle);

    /* Model operations */
    /** Optional. path is borrowed; NULL means the path given at registration. */
    smi_status_t (*load_model)(smi_model_handle_t handle, const char* path);
    /** Optional. Releases what load_model took; the model stays registered. */
    smi_status_t (*unload_model)(smi_model_handle_t handle);
    /**
     * Required. Untyped inference. input is borrowed; output is a caller buffer of
     * *output_size bytes. On success *output_size is the number of bytes written.
     * When the buffer is too small the plugin fails with SMI_ERROR_BUFFER_TOO_SMALL
     * (SMI 1.0 plugins: SMI_ERROR_OUT_OF_MEMORY) and, where it can, sets *output_size
     * to the size needed.
     */
    smi_status_t (*inference)(smi_model_handle_t handle,
                              const void* input, size_t input_size,
                              void* output, size_t* output_size);
    /**
     * Optional. batch_size independent untyped requests; inputs[i]/input_sizes[i]
     * are borrowed, outputs[i] are caller buffers of output_sizes[i] bytes,
     * updated to the bytes written. Fails as a whole.
     */
    smi_status_t (*batch_inference)(smi_model_handle_t handle,
                                    const void* const* inputs, const size_t* input_sizes,
                                    size_t batch_size,
                                    void* const* outputs, size_t* output_sizes);

    /* Resource management */
    /** Optional. requirements[0..num_requirements) borrowed. Unmet requests fail with NOT_SUPPORTED. */
    smi_status_t (*allocate_resources)(smi_model_handle_t handle,
                                       const smi_resource_req_t* requirements,
                                       size_t num_requirements);
    /** Optional. Gives back what allocate_resources took. */
    smi_status_t (*deallocate_resources)(smi_model_handle_t handle);

    /* Model information */
    /**
     * Optional. Writes a NUL-terminated JSON description of the model into the
     * caller's buffer of *info_size bytes and sets *info_size to the bytes written
     * (terminator included). Too small: SMI_ERROR_BUFFER_TOO_SMALL, *info_size = needed.
     */
    smi_status_t (*get_model_info)(smi_model_handle_t handle, char* info, size_t* info_size);

    /* Plugin information (plugin-owned static strings) */
    /** Required. Human-readable name. */
    const char* (*get_plugin_name)(void);
    /** Required. Plugin version, e.g. "1.0.0". */
    const char* (*get_plugin_version)(void);
    /** Optional. Comma-separated frameworks, e.g. "onnx,onnxruntime". */
    const char* (*get_supported_frameworks)(void);
    /** Optional. Same value as smi_plugin_t::smi_version. */
    uint32_t (*get_smi_version)(void);
} smi_plugin_interface_t;

/* ======================= SMI 1.1 types ======================= */

/** Maximum rank of an SMI tensor. */
#define SMI_MAX_DIMS 8

/** Element types (KServe v2 names in comments). */
typedef enum {
    SMI_DTYPE_INVALID = 0,
    SMI_DTYPE_BOOL = 1,    /**< BOOL, one byte per element */
    SMI_DTYPE_UINT8 = 2,   /**< UINT8 */
    SMI_DTYPE_UINT16 = 3,  /**< UINT16 */
    SMI_DTYPE_UINT32 = 4,  /**< UINT32 */
    SMI_DTYPE_UINT64 = 5,  /**< UINT64 */
    SMI_DTYPE_INT8 = 6,    /**< INT8 */
    SMI_DTYPE_INT16 = 7,   /**< INT16 */
    SMI_DTYPE_INT32 = 8,   /**< INT32 */
    SMI_DTYPE_INT64 = 9,   /**< INT64 */
    SMI_DTYPE_FP16 = 10,   /**< FP16 */
    SMI_DTYPE_FP32 = 11,   /**< FP32 */
    SMI_DTYPE_FP64 = 12,   /**< FP64 */
    SMI_DTYPE_BF16 = 13,   /**< BF16 */
    SMI_DTYPE_BYTES = 14   /**< BYTES: each element is a uint32 little-endian length then that many bytes (KServe binary layout) */
} smi_dtype_t;

/** Where tensor data lives. */
typedef enum {
    SMI_MEMORY_CPU = 0,
    SMI_MEMORY_CPU_PINNED = 1,
    SMI_MEMORY_GPU = 2
} smi_memory_type_t;

/** Capability flags (smi_plugin_interface_1_1_t::capabilities). */
#define SMI_CAP_THREAD_SAFE ((uint64_t)1 << 0) /**< every model entry may be called from many threads at once */
#define SMI_CAP_BATCHING    ((uint64_t)1 << 1) /**< typed infer accepts any size along dim 0 (dynamic batch) */
#define SMI_CAP_GPU         ((uint64_t)1 << 2) /**< can run on a GPU in this process */
#define SMI_CAP_TYPED_INFER ((uint64_t)1 << 3) /**< implements infer */
/**
 * SMI 1.3: the plugin's models take whatever tensors they are given (an echo, a pass-through):
 * their get_model_io specs describe defaults only, and hosts do not refuse requests that differ
 * from them. Without it, a host may refuse a request whose inputs or requested outputs do not
 * match the specs (unknown or missing names, another dtype, a fixed dimension of another size).
 */
#define SMI_CAP_ANY_INPUTS  ((uint64_t)1 << 4)

/** Shape and type of one model input or output; dynamic dimensions are -1. */
typedef struct {
    const char* name;              /**< plugin-owned, valid while the model is registered */
    smi_dtype_t dtype;
    uint32_t ndim;
    int64_t shape[SMI_MAX_DIMS];
} smi_tensor_spec_t;

struct smi_tensor;
/** Frees a plugin-allocated output; see smi_tensor_t::release. */
typedef void (*smi_tensor_release_t)(struct smi_tensor* tensor);

/**
 * A typed tensor. Inputs: every field set by the caller, data borrowed for the call.
 * Outputs: see smi_plugin_interface_1_1_t::infer for the ownership rule.
 */
typedef struct smi_tensor {
    const char* name;
    smi_dtype_t dtype;
    uint32_t ndim;
    int64_t shape[SMI_MAX_DIMS];
    void* data;
    size_t byte_size;
    smi_memory_type_t memory_type;
    int32_t device_id;
    /** NULL for caller-owned data; else the caller calls release(this) exactly once. */
    smi_tensor_release_t release;
    void* release_context;         /**< plugin's bookkeeping for release; the caller does not touch it */
} smi_tensor_t;

/**
 * SMI 1.1 entries. Present when the plugin's smi_version is >= 1.1; each entry may
 * still be NULL (absent).
 */
typedef struct {
    /** SMI_CAP_* flags. A host serialises calls into a plugin without SMI_CAP_THREAD_SAFE. */
    uint64_t capabilities;
    /**
     * Input and output specs of a registered model. On entry *num_inputs and *num_outputs
     * are the capacities of the arrays (either array may be NULL with capacity 0); on
     * return they hold the model's counts. Capacity too small: SMI_ERROR_BUFFER_TOO_SMALL
     * with the counts set and nothing written. Names are plugin-owned.
     */
    smi_status_t (*get_model_io)(smi_model_handle_t handle,
                                 smi_tensor_spec_t* inputs, size_t* num_inputs,
                                 smi_tensor_spec_t* outputs, size_t* num_outputs);
    /**
     * Typed inference. inputs[0..num_inputs) are borrowed (data read in place, never
     * kept after return). On entry *num_outputs is the capacity of outputs.
     *
     * Output ownership rule:
     *  - outputs[i].data != NULL on entry: a caller buffer of outputs[i].byte_size bytes
     *    in host memory. The plugin writes the i-th model output into it and sets
     *    name, dtype, ndim, shape and byte_size (release stays NULL). If it is too small
     *    the call fails with SMI_ERROR_BUFFER_TOO_SMALL, byte_size = bytes needed.
     *  - outputs[i].data == NULL on entry: the plugin allocates, fills every field and
     *    sets release. The caller owns the tensor and must call release(&outputs[i])
     *    exactly once, from any thread, even after the model is unloaded.
     *  - Output names are plugin-owned strings valid while the model is registered.
     * On success *num_outputs holds the number of outputs written. On failure no
     * output is left allocated and the caller's buffers may hold partial data.
     */
    smi_status_t (*infer)(smi_model_handle_t handle,
                          const smi_tensor_t* inputs, size_t num_inputs,
                          smi_tensor_t* outputs, size_t* num_outputs);
    /**
     * Message of the last failed call on the calling thread, or NULL. Plugin-owned,
     * valid until the next call into the plugin from the same thread.
     */
    const char* (*get_last_error)(void);
} smi_plugin_interface_1_1_t;

/* ======================= SMI 1.2 types ======================= */

/**
 * SMI 1.2 entries. Present when the plugin's smi_version is >= 1.2; each entry may still be
 * NULL (absent).
 */
typedef struct {
    /**
     * Typed inference with a deadline: exactly infer's contract, plus deadline_ns, an absolute
     * CLOCK_MONOTONIC time in nanoseconds (0: none). A call that passes it is stopped as soon as
     * the framework allows (ONNX Runtime: the run's terminate flag) and fails with
     * SMI_ERROR_TIMEOUT, leaving outputs as any failure does. A plugin that cannot interrupt a
     * run checks the deadline before it starts one.
     */
    smi_status_t (*infer_with_deadline)(smi_model_handle_t handle,
                                        const smi_tensor_t* inputs, size_t num_inputs,
                                        smi_tensor_t* outputs, size_t* num_outputs,
                                        uint64_t deadline_ns);
} smi_plugin_interface_1_2_t;

/* ======================= SMI 1.3 types ======================= */

/**
 * SMI 1.3 entries. Present when the plugin's smi_version is >= 1.3; each entry may still be
 * NULL (absent).
 */
typedef struct {
    /**
     * Typed inference of chosen outputs: infer_with_deadline's contract, plus
     * output_names[0..num_output_names), the model outputs the caller wants (each named once,
     * caller-owned for the call). The plugin computes what it must to produce those and writes
     * exactly those outputs, in any order (the caller matches them by name); a name the model
     * does not have fails the call with SMI_ERROR_INVALID_PARAM. num_output_names == 0 means
     * every output, as infer_with_deadline. With names, every output slot is empty on entry
     * (data NULL): the plugin allocates what it writes. Lets a model with many outputs skip the
     * memory, copies and (where its framework can) the work of the ones nobody asked for.
     */
    smi_status_t (*infer_selected)(smi_model_handle_t handle,
                                   const smi_tensor_t* inputs, size_t num_inputs,
                                   const char* const* output_names, size_t num_output_names,
                                   smi_tensor_t* outputs, size_t* num_outputs,
                                   uint64_t deadline_ns);
} smi_plugin_interface_1_3_t;

/** The plugin descriptor returned by smi_plugin_init. Owned by the plugin, static for its life. */
typedef struct {
    smi_plugin_interface_t interface;
    const char* plugin_id;     /**< stable id, e.g. "onnx-runtime" */
    uint32_t smi_version;      /**< SMI_MAKE_VERSION of the header the plugin was built against */
    void* private_data;        /**< plugin's own; hosts never touch it */
    /* ============ End of SMI 1.0 - do not modify above this line ============ */

    /** SMI 1.1: read only when SMI_VERSION_GET_MINOR(smi_version) >= 1. */
    smi_plugin_interface_1_1_t v1_1;
    /* ============ End of SMI 1.1 - do not modify above this line ============ */

    /** SMI 1.2: read only when SMI_VERSION_GET_MINOR(smi_version) >= 2. */
    smi_plugin_interface_1_2_t v1_2;
    /* ============ End of SMI 1.2 - do not modify above this line ============ */

    /** SMI 1.3: read only when SMI_VERSION_GET_MINOR(smi_version) >= 3. */
    smi_plugin_interface_1_3_t v1_3;
    /* ============ End of SMI 1.3 - do not modify above this line ============ */
} smi_plugin_t;

/** Type of the one symbol a plugin exports. */
typedef smi_plugin_t* (*smi_plugin_init_func_t)(void);

/** Name of that symbol. */
#define SMI_PLUGIN_INIT_SYMBOL "smi_plugin_init"

#ifndef SMI_NO_INIT_DECLARATION
/**
 * Declaration of the entry point, so a C++ definition gets C linkage. A plugin whose
 * toolchain declares it another way (cgo) defines SMI_NO_INIT_DECLARATION first.
 */
smi_plugin_t* smi_plugin_init(void);
#endif

#ifdef __cplusplus
}
#endif

#endif /* MLOS_SMI_SPEC_H */
