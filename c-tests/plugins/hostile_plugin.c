/* A hostile SMI 1.2 plugin for core_hostile_test.c (#12, "trust no plugin"): it keeps track of
 * what the core does to it, and breaks the SMI contract on request, per model.
 *
 * Built twice: libmlos_hostile_plugin.so (plugin id "hostile", SMI_CAP_THREAD_SAFE) and, with
 * -DHOSTILE_SERIAL, libmlos_hostile_serial_plugin.so ("hostile-serial", not thread-safe, so
 * the core serialises every call into it).
 *
 * Bookkeeping, always on (read with hostile_stats(), see hostile_plugin.h):
 *  - register_model mallocs the handle and unregister_model frees it (after a quarantine of
 *    QUARANTINE later unregisters, so that a stale handle is not at once a new model's address).
 *    Every entry first looks its handle up in the live set: a handle not there is a "dead
 *    handle call", counted and refused without touching it.
 *  - An entry running on a handle while unregister_model runs on it is an "overlap".
 *  - Plugin-allocated outputs carry a record that counts allocations, first releases, second
 *    releases of one output and releases of tensors the plugin never gave out. release does
 *    not clear the tensor: clearing it is the caller's (the core's) job.
 *
 * Default model: untyped inference echoes its input (BUFFER_TOO_SMALL, with the size needed,
 * when the output is smaller); typed infer takes one input and gives two outputs "y0", "y1",
 * both copies of it (into caller buffers, or allocated); get_model_io says one input "x" and
 * two outputs, all FP32 [-1,-1] (a free dim 0, so dynamic batching is allowed).
 *
 * Keywords in smi_model_metadata_t::config (the model options' "config"), "key=value" words:
 *   outputs=N            typed infer succeeds claiming *num_outputs = N (writes only 2)
 *   output_size=N        inference succeeds claiming *output_size = N (writes only what fits)
 *   io=huge              get_model_io claims 2^40 inputs, and succeeds
 *   io=grow              get_model_io claims 3 more specs than each capacity it is given, and succeeds
 *   bad=KIND             typed infer output 0 is broken (output 1 is fine and allocated), KIND:
 *                        name (NULL name), dtype (99), ndim (9), bytes (byte_size half what the
 *                        shape needs), norelease (plugin data, release NULL)
 *   status=N             inference and infer return N (any int, in SMI range or not)
 *   hang=1               inference and infer wait until hostile_release_hang() (20 s at most)
 *   delay_us=N           inference and infer sleep N microseconds first
 *   register_sleep_ms=N  register_model sleeps N ms first
 *   crash=KIND           inference and infer end the process, for plugin isolation (#16): segv (a
 *                        write through NULL), abort, exit (exit(0) from inside the call)
 *   overrun=N            inference echoes, then writes N bytes past the end of the output buffer it
 *                        was given (a buffer overrun: only ever run isolated)
 *   grab_mb=N            inference and infer allocate and touch up to N MiB in 16 MiB blocks first,
 *                        and abort() when an allocation fails (as C++'s operator new ends a
 *                        program); the blocks are freed when it does not
 *   reenter=infer:ID     inference calls the host's mlos_core_inference on model ID, and writes
 *                        the inner status (int32) then the inner last error (text, NUL) as output
 *   reenter=unload:ID    the same with mlos_core_unload_model(ID)
 * The host for reenter is given with hostile_set_host().
 *
 * SMI 1.2: the serial build has infer_with_deadline, which ignores its deadline (a plugin that
 * cannot interrupt its framework), so that the core's own bound on waiting for the gate of a
 * serialised plugin can be tested; the thread-safe build has none (timeout_ms is refused there).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hostile_plugin.h"

#define EXPORT __attribute__((visibility("default")))
#define MAX_LIVE 1024
#define QUARANTINE 256
#define HANG_SAFETY_S 20
#define NUM_OUTPUTS 2

typedef enum { BAD_NONE, BAD_NAME, BAD_DTYPE, BAD_NDIM, BAD_BYTES, BAD_NORELEASE } bad_kind_t;
typedef enum { IO_HONEST, IO_HUGE, IO_GROW } io_kind_t;
typedef enum { REENTER_NONE, REENTER_INFER, REENTER_UNLOAD } reenter_kind_t;
typedef enum { CRASH_NONE, CRASH_SEGV, CRASH_ABORT, CRASH_EXIT } crash_kind_t;

typedef struct {
    char* name;
    int loaded;        /* under g_lock */
    int inside;        /* entries running on this model, under g_lock */
    int unregistering; /* under g_lock */
    long lie_outputs, lie_output_size, status, delay_us;
    int hang;
    io_kind_t io;
    bad_kind_t bad;
    reenter_kind_t reenter;
    char reenter_target[128];
    crash_kind_t crash;
    long grab_mb;
    long overrun;
    unsigned long long allocated; /* the amounts of the last allocate_resources, 0 after deallocate; under g_lock */
} model_t;

/* One plugin-allocated output. Never freed: a second release must find it to be counted. */
typedef struct record {
    struct record* next;
    void* data;
    int released;
} record_t;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_hang_cond = PTHREAD_COND_INITIALIZER;
static int g_hang_released;
static hostile_stats_t g_stats;
static model_t* g_live[MAX_LIVE];
static size_t g_num_live;
static model_t* g_quarantine[QUARANTINE];
static size_t g_quarantine_next;
static record_t* g_records;
static hostile_host_t g_host;
static unsigned char g_static_output[256]; /* the "norelease" output's data */
static __thread char t_error[512];

static smi_status_t fail(smi_status_t status, const char* format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(t_error, sizeof t_error, format, args);
    va_end(args);
    return status;
}

/* ---------------------------------------------------------------- config keywords */

/* The value after "key=" in config, where key starts a word; NULL when absent. */
static const char* config_value(const char* config, const char* key) {
    size_t n = strlen(key);
    const char* p = config;
    while (p && (p = strstr(p, key)) != NULL) {
        int starts_word = p == config || !(isalnum((unsigned char)p[-1]) || p[-1] == '_');
        if (starts_word && p[n] == '=') return p + n + 1;
        p += n;
    }
    return NULL;
}

static long config_long(const char* config, const char* key, long fallback) {
    const char* v = config_value(config, key);
    return v ? strtol(v, NULL, 10) : fallback;
}

/* Copies the word after "key=" (letters, digits, _ . : -) into out; "" when absent. */
static void config_word(const char* config, const char* key, char* out, size_t size) {
    const char* v = config_value(config, key);
    size_t i = 0;
    while (v && i + 1 < size && (isalnum((unsigned char)v[i]) || strchr("_.:-", v[i]) != NULL) && v[i]) {
        out[i] = v[i];
        i++;
    }
    out[i] = '\0';
}

static bad_kind_t parse_bad(const char* word) {
    static const char* const names[] = {"", "name", "dtype", "ndim", "bytes", "norelease"};
    int i;
    for (i = 1; i < (int)(sizeof names / sizeof names[0]); i++)
        if (strcmp(word, names[i]) == 0) return (bad_kind_t)i;
    return BAD_NONE;
}

static void parse_reenter(model_t* m, const char* word) {
    const char* colon = strchr(word, ':');
    if (colon == NULL) return;
    if (strncmp(word, "infer:", 6) == 0) m->reenter = REENTER_INFER;
    else if (strncmp(word, "unload:", 7) == 0) m->reenter = REENTER_UNLOAD;
    snprintf(m->reenter_target, sizeof m->reenter_target, "%s", colon + 1);
}

static void parse_config(model_t* m, const char* config) {
    char word[160];
    m->lie_outputs = config_long(config, "outputs", -1);
    m->lie_output_size = config_long(config, "output_size", -1);
    m->status = config_long(config, "status", 0);
    m->delay_us = config_long(config, "delay_us", 0);
    m->hang = config_long(config, "hang", 0) != 0;
    config_word(config, "io", word, sizeof word);
    m->io = strcmp(word, "huge") == 0 ? IO_HUGE : strcmp(word, "grow") == 0 ? IO_GROW : IO_HONEST;
    config_word(config, "bad", word, sizeof word);
    m->bad = parse_bad(word);
    config_word(config, "reenter", word, sizeof word);
    parse_reenter(m, word);
    m->grab_mb = config_long(config, "grab_mb", 0);
    m->overrun = config_long(config, "overrun", 0);
    config_word(config, "crash", word, sizeof word);
    m->crash = strcmp(word, "segv") == 0 ? CRASH_SEGV : strcmp(word, "abort") == 0 ? CRASH_ABORT
             : strcmp(word, "exit") == 0 ? CRASH_EXIT : CRASH_NONE;
}

/* Allocates grab_mb MiB (touched, so really resident) and frees it; aborts when malloc fails. */
static void grab_as_told(const model_t* m) {
    enum { BLOCK = 16 << 20 };
    long blocks = m->grab_mb / 16, i;
    void** held;
    if (blocks <= 0) return;
    held = (void**)calloc((size_t)blocks, sizeof *held);
    if (held == NULL) abort();
    for (i = 0; i < blocks; i++) {
        held[i] = malloc(BLOCK);
        if (held[i] == NULL) abort();
        memset(held[i], 0x5a, BLOCK);
    }
    for (i = 0; i < blocks; i++) free(held[i]);
    free(held);
}

/* Ends the process as the model's crash keyword says (a plugin bug the core must survive). */
static void crash_as_told(const model_t* m) {
    volatile int* nowhere = NULL;
    switch (m->crash) {
    case CRASH_SEGV: *nowhere = 1; break;
    case CRASH_ABORT: abort();
    case CRASH_EXIT: exit(0);
    case CRASH_NONE: break;
    }
}

/* ---------------------------------------------------------------- live handles */

static int live_index(smi_model_handle_t handle) {
    size_t i;
    for (i = 0; i < g_num_live; i++)
        if (g_live[i] == handle) return (int)i;
    return -1;
}

/* Starts an entry on handle: the model, or NULL (counted) when the handle is not live. */
static model_t* enter(smi_model_handle_t handle) {
    model_t* m = NULL;
    pthread_mutex_lock(&g_lock);
    if (live_index(handle) >= 0) {
        m = (model_t*)handle;
        if (m->unregistering) g_stats.overlaps++;
        m->inside++;
    } else {
        g_stats.dead_calls++;
    }
    pthread_mutex_unlock(&g_lock);
    return m;
}

static void leave(model_t* m) {
    pthread_mutex_lock(&g_lock);
    m->inside--;
    pthread_mutex_unlock(&g_lock);
}

static smi_status_t dead(void) { return fail(SMI_ERROR_INVALID_STATE, "hostile: call on a dead handle"); }

static void free_model(model_t* m) {
    if (m == NULL) return;
    free(m->name);
    free(m);
}

/* Forgets m; the memory goes after QUARANTINE more unregisters. Caller holds g_lock. */
static void retire(int index) {
    model_t* m = g_live[index];
    g_live[index] = g_live[--g_num_live];
    g_stats.live = (long)g_num_live;
    free_model(g_quarantine[g_quarantine_next]);
    g_quarantine[g_quarantine_next] = m;
    g_quarantine_next = (g_quarantine_next + 1) % QUARANTINE;
}

static void copy_path(char* out, const char* path) {
    snprintf(out, HOSTILE_PATH_MAX, "%s", path ? path : "(null)");
}

/* ---------------------------------------------------------------- lifecycle */

static smi_status_t hostile_initialize(const char* config) {
    (void)config;
    pthread_mutex_lock(&g_lock);
    g_stats.initializes++;
    pthread_mutex_unlock(&g_lock);
    return SMI_SUCCESS;
}

static smi_status_t hostile_cleanup(void) { return SMI_SUCCESS; }

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static void sleep_in_register(long ms) {
    pthread_mutex_lock(&g_lock);
    g_stats.registering++;
    pthread_mutex_unlock(&g_lock);
    sleep_ms(ms);
    pthread_mutex_lock(&g_lock);
    g_stats.registering--;
    pthread_mutex_unlock(&g_lock);
}

static smi_status_t hostile_register(const smi_model_metadata_t* metadata, smi_model_handle_t* handle) {
    model_t* m;
    long sleep = metadata->config ? config_long(metadata->config, "register_sleep_ms", 0) : 0;
    if (sleep > 0) sleep_in_register(sleep);
    m = (model_t*)calloc(1, sizeof *m);
    if (m == NULL || (m->name = strdup(metadata->name)) == NULL) {
        free(m);
        return fail(SMI_ERROR_OUT_OF_MEMORY, "hostile: out of memory");
    }
    parse_config(m, metadata->config);
    pthread_mutex_lock(&g_lock);
    if (g_num_live == MAX_LIVE) {
        pthread_mutex_unlock(&g_lock);
        free_model(m);
        return fail(SMI_ERROR_OUT_OF_MEMORY, "hostile: too many models");
    }
    g_live[g_num_live++] = m;
    g_stats.live = (long)g_num_live;
    g_stats.registered++;
    copy_path(g_stats.last_register_path, metadata->path);
    pthread_mutex_unlock(&g_lock);
    *handle = m;
    return SMI_SUCCESS;
}

/* Marks the model, lets a moment pass (entries arriving now are overlaps), then retires it. */
static smi_status_t hostile_unregister(smi_model_handle_t handle) {
    model_t* m = (model_t*)handle;
    pthread_mutex_lock(&g_lock);
    if (live_index(handle) < 0) {
        g_stats.dead_calls++;
        pthread_mutex_unlock(&g_lock);
        return dead();
    }
    m->unregistering = 1;
    if (m->inside) g_stats.overlaps++;
    pthread_mutex_unlock(&g_lock);
    usleep(100);
    pthread_mutex_lock(&g_lock);
    if (m->inside) g_stats.overlaps++;
    if (live_index(handle) >= 0) retire(live_index(handle));
    else g_stats.overlaps++; /* a second unregister of the same handle ran meanwhile */
    pthread_mutex_unlock(&g_lock);
    return SMI_SUCCESS;
}

static smi_status_t set_loaded(smi_model_handle_t handle, int loaded, const char* path) {
    model_t* m = enter(handle);
    if (m == NULL) return dead();
    pthread_mutex_lock(&g_lock);
    m->loaded = loaded;
    if (loaded) copy_path(g_stats.last_load_path, path);
    pthread_mutex_unlock(&g_lock);
    leave(m);
    return SMI_SUCCESS;
}

static smi_status_t hostile_load(smi_model_handle_t handle, const char* path) { return set_loaded(handle, 1, path); }
static smi_status_t hostile_unload(smi_model_handle_t handle) { return set_loaded(handle, 0, NULL); }

static smi_status_t hostile_allocate(smi_model_handle_t handle, const smi_resource_req_t* requirements, size_t count) {
    model_t* m = enter(handle);
    unsigned long long total = 0;
    size_t i;
    if (m == NULL) return dead();
    for (i = 0; requirements != NULL && i < count; i++) total += requirements[i].amount;
    pthread_mutex_lock(&g_lock);
    m->allocated = total; /* model info reports it: a restarted host must be given it again */
    pthread_mutex_unlock(&g_lock);
    leave(m);
    return SMI_SUCCESS;
}

static smi_status_t hostile_deallocate(smi_model_handle_t handle) { return hostile_allocate(handle, NULL, 0); }

static smi_status_t hostile_model_info(smi_model_handle_t handle, char* info, size_t* info_size) {
    model_t* m = enter(handle);
    char text[512];
    size_t need;
    if (m == NULL) return dead();
    pthread_mutex_lock(&g_lock);
    need = (size_t)snprintf(text, sizeof text, "{\"name\":\"%s\",\"hostile\":true,\"loaded\":%s,\"allocated\":%llu}", m->name,
                            m->loaded ? "true" : "false", m->allocated) + 1;
    pthread_mutex_unlock(&g_lock);
    leave(m);
    if (info == NULL || *info_size < need) {
        *info_size = need;
        return fail(SMI_ERROR_BUFFER_TOO_SMALL, "hostile: %zu bytes needed", need);
    }
    memcpy(info, text, need);
    *info_size = need;
    return SMI_SUCCESS;
}

/* ---------------------------------------------------------------- model I/O */

static void fill_spec(smi_tensor_spec_t* spec, const char* name) {
    memset(spec, 0, sizeof *spec);
    spec->name = name;
    spec->dtype = SMI_DTYPE_FP32;
    spec->ndim = 2;
    spec->shape[0] = -1;
    spec->shape[1] = -1;
}

static void fill_specs(smi_tensor_spec_t* inputs, size_t n_in, smi_tensor_spec_t* outputs, size_t n_out) {
    static const char* const out_names[] = {"y0", "y1"};
    size_t i;
    for (i = 0; inputs && i < n_in && i < 1; i++) fill_spec(&inputs[i], "x");
    for (i = 0; outputs && i < n_out; i++) fill_spec(&outputs[i], out_names[i % NUM_OUTPUTS]);
}

/* What the model's io keyword makes get_model_io answer. */
static smi_status_t model_io(const model_t* m, smi_tensor_spec_t* inputs, size_t* num_inputs,
                             smi_tensor_spec_t* outputs, size_t* num_outputs) {
    size_t cap_in = inputs ? *num_inputs : 0, cap_out = outputs ? *num_outputs : 0;
    if (m->io == IO_HUGE) {
        fill_specs(inputs, cap_in, outputs, cap_out < NUM_OUTPUTS ? cap_out : NUM_OUTPUTS);
        *num_inputs = (size_t)1 << 40;
        *num_outputs = NUM_OUTPUTS;
        return SMI_SUCCESS;
    }
    if (m->io == IO_GROW && (cap_in > 0 || cap_out > 0)) {
        fill_specs(inputs, cap_in, outputs, cap_out);
        *num_inputs = cap_in + 3;
        *num_outputs = cap_out + 3;
        return SMI_SUCCESS;
    }
    if (cap_in < 1 || cap_out < NUM_OUTPUTS) {
        *num_inputs = 1;
        *num_outputs = NUM_OUTPUTS;
        return fail(SMI_ERROR_BUFFER_TOO_SMALL, "hostile: 1 input and %d outputs", NUM_OUTPUTS);
    }
    fill_specs(inputs, 1, outputs, NUM_OUTPUTS);
    *num_inputs = 1;
    *num_outputs = NUM_OUTPUTS;
    return SMI_SUCCESS;
}

static smi_status_t hostile_model_io(smi_model_handle_t handle, smi_tensor_spec_t* inputs, size_t* num_inputs,
                                     smi_tensor_spec_t* outputs, size_t* num_outputs) {
    model_t* m = enter(handle);
    smi_status_t status;
    if (m == NULL) return dead();
    status = (num_inputs && num_outputs) ? model_io(m, inputs, num_inputs, outputs, num_outputs)
                                         : fail(SMI_ERROR_INVALID_PARAM, "hostile: NULL count");
    leave(m);
    return status;
}

/* ---------------------------------------------------------------- misbehaviour shared by both inference entries */

static void wait_for_release(void) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += HANG_SAFETY_S;
    pthread_mutex_lock(&g_lock);
    g_stats.hung++;
    while (!g_hang_released && pthread_cond_timedwait(&g_hang_cond, &g_lock, &deadline) != ETIMEDOUT) {}
    g_stats.hung--;
    pthread_mutex_unlock(&g_lock);
}

/* Counts the call and plays hang/delay/status; returns 1 with *status set when that decides the call. */
static int misbehave(model_t* m, long* counter, smi_status_t* status) {
    pthread_mutex_lock(&g_lock);
    (*counter)++;
    if (!m->loaded) g_stats.unloaded_calls++;
    pthread_mutex_unlock(&g_lock);
    crash_as_told(m);
    grab_as_told(m);
    if (m->hang) wait_for_release();
    if (m->delay_us > 0) usleep((useconds_t)m->delay_us);
    if (m->status == 0) return 0;
    *status = fail((smi_status_t)m->status, "hostile: returning status %ld as told", m->status);
    return 1;
}

/* ---------------------------------------------------------------- untyped inference */

static smi_status_t reenter(const model_t* m, void* output, size_t* output_size) {
    hostile_host_t host;
    char answer[64];
    size_t answer_size = sizeof answer, n;
    int32_t inner;
    const char* error;
    pthread_mutex_lock(&g_lock);
    host = g_host;
    pthread_mutex_unlock(&g_lock);
    if (host.core == NULL) return fail(SMI_ERROR_RUNTIME, "hostile: reenter without hostile_set_host");
    if (m->reenter == REENTER_INFER)
        inner = host.inference(host.core, m->reenter_target, "hi", 2, answer, &answer_size);
    else
        inner = host.unload_model(host.core, m->reenter_target);
    error = inner != 0 && host.last_error() ? host.last_error() : "";
    if (*output_size < sizeof inner + 1) return fail(SMI_ERROR_BUFFER_TOO_SMALL, "hostile: reenter needs a bigger output");
    memcpy(output, &inner, sizeof inner);
    n = strlen(error);
    if (n > *output_size - sizeof inner - 1) n = *output_size - sizeof inner - 1;
    memcpy((char*)output + sizeof inner, error, n);
    ((char*)output)[sizeof inner + n] = '\0';
    *output_size = sizeof inner + n + 1;
    return SMI_SUCCESS;
}

static smi_status_t echo_bytes(const model_t* m, const void* input, size_t input_size, void* output, size_t* output_size) {
    size_t capacity = *output_size;
    if (*output_size < input_size) {
        size_t given = *output_size;
        *output_size = input_size;
        return fail(SMI_ERROR_BUFFER_TOO_SMALL, "hostile: %zu bytes needed, %zu given", input_size, given);
    }
    if (input_size) memcpy(output, input, input_size);
    if (m->overrun > 0) memset((char*)output + capacity, 0xee, (size_t)m->overrun);
    *output_size = m->lie_output_size >= 0 ? (size_t)m->lie_output_size : input_size;
    return SMI_SUCCESS;
}

static smi_status_t hostile_inference(smi_model_handle_t handle, const void* input, size_t input_size,
                                      void* output, size_t* output_size) {
    model_t* m = enter(handle);
    smi_status_t status;
    if (m == NULL) return dead();
    if (!misbehave(m, &g_stats.inference_calls, &status))
        status = m->reenter != REENTER_NONE ? reenter(m, output, output_size)
                                            : echo_bytes(m, input, input_size, output, output_size);
    leave(m);
    return status;
}

/* ---------------------------------------------------------------- typed infer */

static int is_our_record(const record_t* r) {
    const record_t* p;
    for (p = g_records; p; p = p->next)
        if (p == r) return 1;
    return 0;
}

/* Frees the data once; counts every later call. Leaves the tensor as it is: not our job. */
static void hostile_release(smi_tensor_t* tensor) {
    record_t* r = tensor ? (record_t*)tensor->release_context : NULL;
    pthread_mutex_lock(&g_lock);
    if (r == NULL || !is_our_record(r)) {
        g_stats.bad_releases++;
    } else if (r->released) {
        g_stats.double_releases++;
    } else {
        r->released = 1;
        free(r->data);
        r->data = NULL;
        g_stats.releases++;
    }
    pthread_mutex_unlock(&g_lock);
}

static smi_status_t allocate_output(smi_tensor_t* out, size_t size) {
    record_t* r = (record_t*)calloc(1, sizeof *r);
    if (r == NULL || (r->data = malloc(size ? size : 1)) == NULL) {
        free(r);
        return fail(SMI_ERROR_OUT_OF_MEMORY, "hostile: out of memory");
    }
    pthread_mutex_lock(&g_lock);
    r->next = g_records;
    g_records = r;
    g_stats.allocs++;
    pthread_mutex_unlock(&g_lock);
    out->data = r->data;
    out->release = hostile_release;
    out->release_context = r;
    return SMI_SUCCESS;
}

/* Output i as a copy of the input, into the caller's buffer or one of ours. */
static smi_status_t write_output(smi_tensor_t* out, const smi_tensor_t* in, const char* name, int no_release) {
    if (out->data != NULL && out->byte_size < in->byte_size) {
        size_t given = out->byte_size;
        out->byte_size = in->byte_size;
        return fail(SMI_ERROR_BUFFER_TOO_SMALL, "hostile: %zu bytes needed, %zu given", in->byte_size, given);
    }
    if (out->data == NULL && no_release) {
        out->data = g_static_output; /* plugin memory, and no release to give it back with */
        out->release = NULL;
    } else if (out->data == NULL) {
        smi_status_t status = allocate_output(out, in->byte_size);
        if (status != SMI_SUCCESS) return status;
    }
    if (in->byte_size) memcpy(out->data, in->data, no_release && in->byte_size > sizeof g_static_output ? sizeof g_static_output : in->byte_size);
    out->name = name;
    out->dtype = in->dtype;
    out->ndim = in->ndim;
    memcpy(out->shape, in->shape, sizeof out->shape);
    out->byte_size = in->byte_size;
    out->memory_type = SMI_MEMORY_CPU;
    out->device_id = 0;
    return SMI_SUCCESS;
}

static void break_output(smi_tensor_t* out, bad_kind_t bad) {
    switch (bad) {
    case BAD_NAME: out->name = NULL; break;
    case BAD_DTYPE: out->dtype = (smi_dtype_t)99; break;
    case BAD_NDIM: out->ndim = 9; break;
    case BAD_BYTES: out->byte_size /= 2; break;
    default: break;
    }
}

static void release_written(smi_tensor_t* outputs, size_t count) {
    size_t i;
    for (i = 0; i < count; i++)
        if (outputs[i].release) {
            hostile_release(&outputs[i]);
            outputs[i].release = NULL;
            outputs[i].data = NULL;
        }
}

static smi_status_t copy_outputs(const model_t* m, const smi_tensor_t* inputs, size_t num_inputs,
                                 smi_tensor_t* outputs, size_t* num_outputs) {
    static const char* const names[] = {"y0", "y1"};
    size_t i;
    if (num_inputs < 1 || inputs == NULL) return fail(SMI_ERROR_INVALID_PARAM, "hostile: needs 1 input");
    if (*num_outputs < NUM_OUTPUTS) {
        *num_outputs = NUM_OUTPUTS;
        return fail(SMI_ERROR_BUFFER_TOO_SMALL, "hostile: outputs array too small");
    }
    for (i = 0; i < NUM_OUTPUTS; i++) {
        smi_status_t status = write_output(&outputs[i], &inputs[0], names[i], i == 0 && m->bad == BAD_NORELEASE);
        if (status != SMI_SUCCESS) {
            release_written(outputs, i);
            return status;
        }
    }
    break_output(&outputs[0], m->bad);
    *num_outputs = m->lie_outputs >= 0 ? (size_t)m->lie_outputs : NUM_OUTPUTS;
    return SMI_SUCCESS;
}

static smi_status_t hostile_infer(smi_model_handle_t handle, const smi_tensor_t* inputs, size_t num_inputs,
                                  smi_tensor_t* outputs, size_t* num_outputs) {
    model_t* m = enter(handle);
    smi_status_t status;
    if (m == NULL) return dead();
    if (!misbehave(m, &g_stats.infer_calls, &status))
        status = copy_outputs(m, inputs, num_inputs, outputs, num_outputs);
    leave(m);
    return status;
}

#ifdef HOSTILE_SERIAL
static smi_status_t hostile_infer_with_deadline(smi_model_handle_t handle, const smi_tensor_t* inputs, size_t num_inputs,
                                                smi_tensor_t* outputs, size_t* num_outputs, uint64_t deadline_ns) {
    (void)deadline_ns; /* never honoured: see the top of the file */
    return hostile_infer(handle, inputs, num_inputs, outputs, num_outputs);
}
#endif

/* ---------------------------------------------------------------- descriptor and test hooks */

static const char* hostile_last_error(void) { return t_error[0] ? t_error : NULL; }
static const char* hostile_name(void) { return "Hostile Fixture"; }
static const char* hostile_version(void) { return "1.0.0"; }
static const char* hostile_frameworks(void) { return "hostile"; }
static uint32_t hostile_smi_version(void) { return SMI_VERSION; }

#ifdef HOSTILE_SERIAL
#define HOSTILE_ID "hostile-serial"
#define HOSTILE_CAPS (SMI_CAP_TYPED_INFER | SMI_CAP_BATCHING)
#else
#define HOSTILE_ID "hostile"
#define HOSTILE_CAPS (SMI_CAP_TYPED_INFER | SMI_CAP_BATCHING | SMI_CAP_THREAD_SAFE)
#endif

static smi_plugin_t g_plugin;

EXPORT smi_plugin_t* smi_plugin_init(void) {
    smi_plugin_interface_t* api = &g_plugin.interface;
    api->initialize = hostile_initialize;
    api->cleanup = hostile_cleanup;
    api->register_model = hostile_register;
    api->unregister_model = hostile_unregister;
    api->load_model = hostile_load;
    api->unload_model = hostile_unload;
    api->inference = hostile_inference;
    api->allocate_resources = hostile_allocate;
    api->deallocate_resources = hostile_deallocate;
    api->get_model_info = hostile_model_info;
    api->get_plugin_name = hostile_name;
    api->get_plugin_version = hostile_version;
    api->get_supported_frameworks = hostile_frameworks;
    api->get_smi_version = hostile_smi_version;
    g_plugin.plugin_id = HOSTILE_ID;
    g_plugin.smi_version = SMI_VERSION;
    g_plugin.v1_1.capabilities = HOSTILE_CAPS;
    g_plugin.v1_1.get_model_io = hostile_model_io;
    g_plugin.v1_1.infer = hostile_infer;
    g_plugin.v1_1.get_last_error = hostile_last_error;
#ifdef HOSTILE_SERIAL
    g_plugin.v1_2.infer_with_deadline = hostile_infer_with_deadline;
#endif
    return &g_plugin;
}

EXPORT void hostile_stats(hostile_stats_t* out) {
    pthread_mutex_lock(&g_lock);
    *out = g_stats;
    pthread_mutex_unlock(&g_lock);
}

EXPORT void hostile_release_hang(void) {
    pthread_mutex_lock(&g_lock);
    g_hang_released = 1;
    pthread_cond_broadcast(&g_hang_cond);
    pthread_mutex_unlock(&g_lock);
}

EXPORT void hostile_set_host(const hostile_host_t* host) {
    pthread_mutex_lock(&g_lock);
    g_host = *host;
    pthread_mutex_unlock(&g_lock);
}
