/* libFuzzer harness over the C API of libmlos_core.so (issue #12). Each input is a small program
 * (core_api_fuzz.h) run against one long-lived core holding the C# echo plugin and the ONNX
 * Runtime plugin, and after every call the harness checks what mlos_core.h promises: a status of 0
 * or a negative smi_status_t, a last error on failure, sane size out-parameters, plugin-allocated
 * outputs released, valid JSON out. A broken promise aborts, which libFuzzer records as a crash.
 *
 * The core and its plugins are NativeAOT code: neither coverage nor ASan instrumentation reaches
 * inside them. So the harness finds its own ways in:
 *  - every buffer it passes (strings, tensor arrays, data, output buffers) ends at a PROT_NONE
 *    guard page: a read or write one byte past what the harness claims faults at once;
 *  - each (call, status, error message) seen bumps a libFuzzer extra counter, so inputs that make
 *    the core answer differently are kept like inputs that reach new code.
 * Built with -fsanitize=fuzzer,address: ASan works with the NativeAOT runtime in-process (its
 * malloc interposition covers the runtime's and the plugins' native allocations), but its leak
 * checker does not: the GC heap is not scanned, so it would report every native block the managed
 * side points to. Run with -detect_leaks=0 (the ctest does); leaks are bounded by -rss_limit_mb
 * and by the harness counting the outputs it releases.
 *
 * The harness never lies about its own memory: every pointer is valid for the size it passes.
 * It lies about everything else (shapes, dtypes, counts, ids, JSON), and passes NULL with a
 * non-zero size where the API says it checks that.
 *
 *   core_api_fuzz -detect_leaks=0 -close_fd_mask=1 CORPUS_DIR       (README.md here; run_fuzz.sh)
 *
 * The build folder, the fixture plugins' folder and the ONNX models' folder are compiled in by
 * CMake and may be overridden with MLOS_BUILD_DIR, MLOS_FIXTURE_DIR and MLOS_ONNX_MODELS.
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core_api_args.h"
#include "core_api_fuzz.h"
#include "json_check.h"
#include "test_support.h"

int LLVMFuzzerInitialize(int* argc, char*** argv);
int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
int mlos_write_corpus(const char* dir); /* core_api_seeds.c */

#ifndef MLOS_FUZZ_BUILD_DIR
#define MLOS_FUZZ_BUILD_DIR "build"
#endif
#ifndef MLOS_FUZZ_FIXTURE_DIR
#define MLOS_FUZZ_FIXTURE_DIR "build/c-tests/plugins"
#endif
#ifndef MLOS_FUZZ_MODEL_DIR
#define MLOS_FUZZ_MODEL_DIR "tests/models/onnx"
#endif

static mlos_api_t api;
mlos_core_t* core;       /* the core every input runs against */
mlos_core_t* stale_core; /* created and destroyed at start: a dangling handle */
char build_dir[2048], fixture_dir[2048], model_dir[2048], echo_so[4096], onnx_so[4096];

/* ---------------------------------------------------------------- findings */

/* Classes of broken promises. MLOS_FUZZ_SKIP=name,name counts a class instead of aborting: to keep
 * fuzzing past a bug that is already reported. Off by default. */
static const char* const class_names[] = {"status", "last-error", "internal-exception", "size", "untouched",
                                          "json", "output", "leak", "registry", "release"};
enum { V_STATUS, V_LAST_ERROR, V_INTERNAL, V_SIZE, V_UNTOUCHED, V_JSON, V_OUTPUT, V_LEAK, V_REGISTRY, V_RELEASE, V_COUNT };
static int skip_class[V_COUNT];
static unsigned long skipped[V_COUNT];
static const char* current_call = "setup";

/* MLOS_FUZZ_TRACE=1: every call, its arguments and its answer on stderr (to read a reproducer). */
static int tracing;
#define TRACE(...) (tracing ? fprintf(stderr, __VA_ARGS__) : 0)

/* A C string for the trace: quoted, escaped, cut at 80 bytes. */
static const char* shown(const char* s) {
    static char out[4][400];
    static int next;
    char* o = out[next = (next + 1) % 4];
    size_t n = 0, i;
    if (!s) return "NULL";
    o[n++] = '"';
    for (i = 0; s[i] && i < 80; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') o[n++] = (char)ch;
        else n += (size_t)snprintf(o + n, 8, "\\x%02x", ch);
    }
    if (s[i]) n += (size_t)snprintf(o + n, 40, "...(%zu bytes)", strlen(s));
    o[n++] = '"';
    o[n] = 0;
    return o;
}

static void violation(int cls, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
static void violation(int cls, const char* fmt, ...) {
    char message[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    if (skip_class[cls]) {
        skipped[cls]++;
        return;
    }
    fprintf(stderr, "\n==== core_api_fuzz: broken promise [%s] in %s: %s\n", class_names[cls], current_call, message);
    abort();
}

/* MLOS_FUZZ_STATS=1: at exit, each distinct (call, status, message shape) seen and how often. */
#define MAX_STATS 2048
static int stats_wanted;
static struct {
    uint32_t hash;
    int call, status;
    unsigned long count;
    char example[160];
} stats[MAX_STATS];
static int num_stats;

static void stats_add(uint32_t hash, int call, int status, const char* message) {
    int i;
    for (i = 0; i < num_stats; i++)
        if (stats[i].hash == hash) {
            stats[i].count++;
            return;
        }
    if (num_stats == MAX_STATS) return;
    stats[num_stats].hash = hash;
    stats[num_stats].call = call;
    stats[num_stats].status = status;
    stats[num_stats].count = 1;
    snprintf(stats[num_stats].example, sizeof stats[0].example, "%s", message ? message : "");
    num_stats++;
}

/* Feedback from inside the NativeAOT code: libFuzzer treats this section as coverage counters. */
#define FEEDBACK_SLOTS 8192
__attribute__((used, section("__libfuzzer_extra_counters"))) static uint8_t feedback[FEEDBACK_SLOTS];

/* The message with its variable parts (the call's own strings, quoted text, numbers) left out,
 * hashed with the call and status. */
static void note(int call, int status, const char* message) {
    uint32_t h = 2166136261u ^ (uint32_t)(call * 64 + status + 16);
    int quoted = 0, k;
    const char* m = message;
    while (m && *m) {
        unsigned char ch = (unsigned char)*m;
        size_t skip = 0;
        for (k = 0; k < num_args && !skip; k++)
            if (strncmp(m, args[k], strlen(args[k])) == 0) skip = strlen(args[k]);
        if (skip) {
            m += skip;
            continue;
        }
        if (ch >= '0' && ch <= '9') { /* a number, hex included */
            while ((*m >= '0' && *m <= '9') || (*m >= 'a' && *m <= 'z') || (*m >= 'A' && *m <= 'Z')) m++;
            continue;
        }
        if (ch == '\'') quoted = !quoted;
        else if (!quoted && ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == ' '))
            h = (h ^ ch) * 16777619u;
        m++;
    }
    feedback[h % FEEDBACK_SLOTS]++;
    if (stats_wanted) stats_add(h, call, status, message);
}

#define ALL_STATUSES 0x7ffu
#define S(status) (1u << -(status))
#define OK_BIT 1u

/* The checks every call's status passes; returns the status. */
static int check_status(int call, int status, unsigned allowed) {
    const char* err;
    if (status > 0 || status < SMI_ERROR_BUSY) violation(V_STATUS, "status %d is not an smi_status_t", status);
    err = status != 0 ? api.last_error() : NULL;
    if (status != 0) {
        size_t at, len = err ? strnlen(err, 65536) : 0;
        const char* why;
        if (err == NULL || err[0] == 0) violation(V_LAST_ERROR, "status %d with no last error", status);
        else if (len >= 65536) violation(V_LAST_ERROR, "status %d with a last error of 64 KB or more", status);
        else if ((why = utf8_problem(err, len, &at)) != NULL)
            violation(V_LAST_ERROR, "status %d, last error not UTF-8 (%s at byte %zu): %s", status, why, at, shown(err));
        /* "SomethingException: ..." is a managed exception the boundary did not expect. */
        else {
            const char* colon = strstr(err, "Exception: ");
            const char* p = err;
            while (p < colon && ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))) p++;
            if (colon && p == colon) violation(V_INTERNAL, "status %d, an unexpected exception: %s", status, err);
        }
    }
    if (!(allowed & (status == 0 ? OK_BIT : S(status))))
        violation(V_STATUS, "status %d not expected here; last error: %s", status, err ? err : "(none)");
    note(call, status, err);
    TRACE("    -> %d%s%s\n", status, err ? " " : "", err ? shown(err) : "");
    return status;
}

/* ---------------------------------------------------------------- model bookkeeping */

/* Models this input registered (to unregister at its end, so every input starts alike), and what
 * each printable-ASCII id is bound to, for the echo oracle. */
enum { KIND_NONE = 0, KIND_ECHO = 1, KIND_ONNX = 2, KIND_OTHER = 3 };
#define MAX_TRACKED 64
typedef struct {
    char id[1600];
    int kind;
} tracked_t;
static tracked_t tracked[MAX_TRACKED];
static int num_tracked;
static const char* const baseline_ids[] = {"echo", "echo-batch", "mlp"};
static const int baseline_kinds[] = {KIND_ECHO, KIND_ECHO, KIND_ONNX};
static int baseline_bound[3]; /* 0 once the input unregistered it */

static int printable(const char* id) {
    size_t i;
    if (!id || !id[0] || strlen(id) > 256) return 0;
    for (i = 0; id[i]; i++)
        if (id[i] < 0x21 || id[i] > 0x7e) return 0;
    return 1;
}

static int kind_of(const char* id) {
    int i;
    if (!printable(id)) return KIND_NONE;
    for (i = num_tracked - 1; i >= 0; i--)
        if (strcmp(tracked[i].id, id) == 0) return tracked[i].kind;
    for (i = 0; i < 3; i++)
        if (strcmp(baseline_ids[i], id) == 0) return baseline_bound[i] ? baseline_kinds[i] : KIND_NONE;
    return KIND_NONE;
}

static void track_registered(const char* id, const char* plugin) {
    tracked_t* t;
    if (num_tracked == MAX_TRACKED || strlen(id) >= sizeof tracked[0].id) abort();
    t = &tracked[num_tracked++];
    strcpy(t->id, id);
    t->kind = !printable(id) ? KIND_NONE
              : strcmp(plugin, "csharp-echo") == 0 ? KIND_ECHO
              : strcmp(plugin, "onnx-runtime") == 0 ? KIND_ONNX : KIND_OTHER;
}

static void track_unregistered(const char* id) {
    int i;
    for (i = 0; i < num_tracked; i++)
        if (strcmp(tracked[i].id, id) == 0) tracked[i].kind = KIND_NONE; /* stays listed for cleanup */
    for (i = 0; i < 3; i++)
        if (strcmp(baseline_ids[i], id) == 0) baseline_bound[i] = 0;
}

/* ---------------------------------------------------------------- text calls */

/* A text-returning call with the buffer chosen by sel (TXT_*); checks the size protocol. */
typedef int (*text_call_t)(const char* id, char* buf, size_t* size);

static void text_check(int call, rd_t* r, text_call_t fn, const char* id, unsigned allowed, int is_json) {
    static const size_t caps[] = {0, 0, 0, 1, 8, 256, 65536, 0};
    uint8_t sel = u8(r);
    size_t cap = caps[sel % 8], size, before;
    char* buf;
    int st;
    if (sel % 8 == TXT_U16) cap = u16(r) % 65536;
    if (sel % 8 == TXT_NULL_CAP) cap = u16(r) | 1;
    buf = sel % 8 <= TXT_NULL_CAP ? NULL : region_end(&r_text, cap);
    before = size = cap;
    TRACE("%s(%s, %s, %s %zu)\n", current_call, shown(id), buf ? "buffer" : "NULL", sel % 8 == TXT_NO_SIZE ? "size NULL," : "cap", cap);
    st = check_status(call, fn(id, buf, sel % 8 == TXT_NO_SIZE ? NULL : &size), allowed);
    if (sel % 8 == TXT_NO_SIZE) {
        /* model_info may look the id up first: an unknown id then answers NOT_FOUND. */
        if (st != SMI_ERROR_INVALID_PARAM && !(st == SMI_ERROR_NOT_FOUND && call == OP_MODEL_INFO))
            violation(V_STATUS, "NULL size answered %d: %s", st, api.last_error());
        return;
    }
    if (st == SMI_SUCCESS) {
        const char* why;
        size_t at;
        if (buf == NULL) violation(V_SIZE, "success with a NULL buffer");
        if (size == 0 || size > cap) violation(V_SIZE, "wrote %zu bytes into %zu", size, cap);
        if (buf[size - 1] != 0 || strlen(buf) != size - 1)
            violation(V_SIZE, "%zu bytes written but strlen is %zu", size, strnlen(buf, size));
        if (is_json && (why = json_problem(buf, size - 1, &at)) != NULL)
            violation(V_JSON, "invalid JSON (%s at byte %zu): %.*s", why, at, (int)(size - 1 < 600 ? size - 1 : 600), buf);
    } else if (st == SMI_ERROR_BUFFER_TOO_SMALL) {
        if (buf != NULL && size <= cap) violation(V_SIZE, "too small, yet %zu needed of %zu given", size, cap);
        if (size == 0) violation(V_SIZE, "too small, needing 0 bytes");
        if ((sel & TXT_RETRY) && size <= r_text.cap) {
            size_t need = size;
            buf = region_end(&r_text, need);
            st = check_status(call, fn(id, buf, &size), allowed);
            if (st != SMI_SUCCESS || size != need)
                violation(V_SIZE, "asked for %zu bytes, given them: status %d, size %zu", need, st, size);
        }
    } else if (size != before) violation(V_UNTOUCHED, "status %d changed *size from %zu to %zu", st, before, size);
}

static mlos_core_t* call_core; /* the core the current text call goes to */
static int call_model_info(const char* id, char* b, size_t* s) { return api.model_info(call_core, id, b, s); }
static int call_list_models(const char* id, char* b, size_t* s) { (void)id; return api.list_models(call_core, b, s); }
static int call_list_plugins(const char* id, char* b, size_t* s) { (void)id; return api.list_plugins(call_core, b, s); }
static int call_layout(const char* id, char* b, size_t* s) { (void)id; return api.smi_layout(b, s); }

/* model_info with a big buffer, for the registry checks. */
static int info_of(const char* id, char* json, size_t cap) {
    size_t size = cap;
    return check_status(OP_MODEL_INFO, api.model_info(core, id, json, &size), OK_BIT | S(-1) | S(-3) | S(-6));
}

/* ---------------------------------------------------------------- outputs */

/* pick_tensor sets this as some inputs' release: the core must never call it. */
void input_release_called(smi_tensor_t* t) {
    (void)t;
    violation(V_RELEASE, "the core called release on an input tensor");
}

static const size_t out_sizes[] = {0, 1, 4, 8, 24, 64, 192, 4096};

static int valid_dtype(int dtype) { return dtype >= SMI_DTYPE_BOOL && dtype <= SMI_DTYPE_BYTES; }

/* A BYTES tensor's length prefixes fill its bytes exactly. */
static int bytes_layout_ok(const smi_tensor_t* t, int64_t count) {
    size_t off = 0;
    int64_t e;
    for (e = 0; e < count; e++) {
        uint32_t len;
        if (t->byte_size - off < 4) return 0;
        memcpy(&len, (const uint8_t*)t->data + off, 4);
        off += 4;
        if (len > t->byte_size - off) return 0;
        off += len;
    }
    return off == t->byte_size;
}

/* What every output of a successful infer must look like; echo ones must equal their input. */
static void check_output(const smi_tensor_t* o, size_t i, void* given_data, size_t given_size, const smi_tensor_t* echo_of) {
    int64_t count;
    uint64_t want_bytes;
    uint32_t d;
    if (o->name == NULL) violation(V_OUTPUT, "output %zu has no name", i);
    if (!valid_dtype(o->dtype)) violation(V_OUTPUT, "output %zu has dtype %d", i, (int)o->dtype);
    if (o->ndim > SMI_MAX_DIMS) violation(V_OUTPUT, "output %zu has ndim %u", i, o->ndim);
    /* A caller buffer is host memory by the spec, whatever its memory_type says (the harness
     * leaves junk there); a plugin's own allocation must say where it is. */
    if (!given_data && o->memory_type != SMI_MEMORY_CPU && o->memory_type != SMI_MEMORY_CPU_PINNED)
        violation(V_OUTPUT, "output %zu is in memory type %d", i, (int)o->memory_type);
    count = element_count(o);
    if (count < 0) violation(V_OUTPUT, "output %zu has a negative or huge shape", i);
    if (o->byte_size > 0 && o->data == NULL) violation(V_OUTPUT, "output %zu has %zu bytes and no data", i, o->byte_size);
    if (o->dtype == SMI_DTYPE_BYTES) {
        if (o->data && !bytes_layout_ok(o, count)) violation(V_OUTPUT, "output %zu: BYTES layout does not fill %zu bytes", i, o->byte_size);
    } else if (valid_dtype(o->dtype) && count >= 0 &&
               (__builtin_mul_overflow((uint64_t)count, (uint64_t)dtype_size(o->dtype), &want_bytes) || want_bytes != o->byte_size))
        violation(V_OUTPUT, "output %zu: %zu bytes for %lld elements of dtype %d", i, o->byte_size, (long long)count, (int)o->dtype);
    if (given_data) {
        if (o->data != given_data) violation(V_OUTPUT, "output %zu: the caller's buffer was replaced", i);
        if (o->release != NULL) violation(V_OUTPUT, "output %zu: a caller buffer came back with a release", i);
        if (o->byte_size > given_size) violation(V_OUTPUT, "output %zu: %zu bytes in a buffer of %zu", i, o->byte_size, given_size);
    } else if (o->release == NULL && o->data != NULL)
        violation(V_OUTPUT, "output %zu: allocated by the plugin, but no release", i);
    if (echo_of) {
        char want[32];
        snprintf(want, sizeof want, "output_%zu", i);
        if (o->name && strcmp(o->name, want) != 0) violation(V_OUTPUT, "echo output %zu is named %s", i, o->name);
        if (o->dtype != echo_of->dtype || o->ndim != echo_of->ndim || o->byte_size != echo_of->byte_size)
            violation(V_OUTPUT, "echo output %zu: dtype %d ndim %u bytes %zu; input: %d %u %zu", i, (int)o->dtype, o->ndim,
                      o->byte_size, (int)echo_of->dtype, echo_of->ndim, echo_of->byte_size);
        for (d = 0; d < o->ndim && d < SMI_MAX_DIMS; d++)
            if (o->shape[d] != echo_of->shape[d]) violation(V_OUTPUT, "echo output %zu: dim %u is %lld, not %lld", i, d,
                                                            (long long)o->shape[d], (long long)echo_of->shape[d]);
        if (o->byte_size && o->data && memcmp(o->data, echo_of->data, o->byte_size) != 0)
            violation(V_OUTPUT, "echo output %zu differs from its input", i);
    }
}

static unsigned long outputs_released, outputs_allocated;

static void op_infer(rd_t* r, mlos_core_t* c, int bad) {
    static const size_t big_counts[] = {300, 1024, 1025, 2000};
    const char* id = pick_id(r);
    uint8_t ic = u8(r), oc;
    size_t n_in, described, i, cap, num, before;
    smi_tensor_t* inputs = NULL;
    smi_tensor_t* outputs = NULL;
    static void* given[BIG_INPUTS];
    static size_t given_size[BIG_INPUTS];
    int st, per_tensor_release, kind = kind_of(id);

    if (ic >= INPUTS_BIG) n_in = big_counts[ic & 3], described = u8(r) % MAX_TENSORS + 1;
    else if (ic >= INPUTS_NULL) n_in = ic & 7, described = 0;
    else n_in = described = ic % MAX_TENSORS;
    if (ic < INPUTS_NULL || ic >= INPUTS_BIG) {
        inputs = region_end(&r_inputs, (n_in ? n_in : 1) * sizeof(smi_tensor_t));
        if (n_in == 0) inputs = region_end(&r_inputs, 0); /* a valid pointer to no tensors */
        for (i = 0; i < described; i++) pick_tensor(r, &inputs[i], (int)i);
        for (i = described; i < n_in; i++) inputs[i] = inputs[i % described];
    }
    oc = u8(r);
    per_tensor_release = (oc / 6) & 1;
    if (oc >= OUTPUTS_NULL) cap = oc & 3;
    else {
        cap = oc >= OUTPUTS_BIG ? big_counts[oc & 3] : oc % 6;
        outputs = region_end(&r_outputs, (cap ? cap : 1) * sizeof(smi_tensor_t));
        if (cap == 0) outputs = region_end(&r_outputs, 0);
    }
    for (i = 0; outputs && i < cap; i++) {
        uint8_t sel = i < MAX_OUTPUTS ? u8(r) : 0; /* slots past 8: plugin-allocated */
        smi_tensor_t* o = &outputs[i];
        memset(o, 0x5a, sizeof *o); /* junk everywhere the caller need not fill */
        o->name = "junk";
        o->release = NULL;
        o->release_context = NULL;
        given[i] = NULL;
        given_size[i] = 0;
        if (sel % 4 >= 2) {
            given_size[i] = sel % 4 == 2 ? out_sizes[(sel >> 2) % 8] : u16(r);
            given[i] = region_end(&r_outbuf[i], given_size[i]);
        }
        o->data = given[i];
        o->byte_size = given_size[i];
    }
    before = num = cap;
    if (tracing) {
        TRACE("infer(%s, %s, %zu inputs, %s, cap %zu)\n", shown(id), inputs ? "inputs" : "NULL", n_in, outputs ? "outputs" : "NULL", cap);
        for (i = 0; inputs && i < described; i++) {
            uint32_t d;
            TRACE("    in %zu: name %s dtype %d ndim %u shape [", i, shown(inputs[i].name), (int)inputs[i].dtype, inputs[i].ndim);
            for (d = 0; d < inputs[i].ndim && d < SMI_MAX_DIMS; d++) TRACE("%s%lld", d ? "," : "", (long long)inputs[i].shape[d]);
            TRACE("] data %s byte_size %zu memory %d%s\n", inputs[i].data ? "buffer" : "NULL", inputs[i].byte_size,
                  (int)inputs[i].memory_type, inputs[i].release ? " release set" : "");
        }
        for (i = 0; outputs && i < cap; i++)
            TRACE("    out slot %zu: %s %zu\n", i, given[i] ? "caller buffer of" : "plugin-allocated", given_size[i]);
    }
    st = check_status(OP_INFER, api.infer(c, id, inputs, n_in, outputs, &num), bad ? S(-1) : ALL_STATUSES & ~S(-8) & ~S(-9));
    if (st == SMI_SUCCESS) {
        if (num > cap) violation(V_SIZE, "%zu outputs written into %zu slots", num, cap);
        if (kind == KIND_ECHO && num != n_in) violation(V_OUTPUT, "echo gave %zu outputs for %zu inputs", num, n_in);
        for (i = 0; i < num && i < cap; i++) {
            if (!given[i] && outputs[i].release) outputs_allocated++;
            check_output(&outputs[i], i, given[i], given_size[i], kind == KIND_ECHO ? &inputs[i] : NULL);
        }
        for (i = num; i < cap; i++)
            if (outputs[i].release) violation(V_LEAK, "slot %zu past the %zu outputs holds an allocation", i, num);
        if (per_tensor_release) {
            for (i = 0; i < num && i < cap; i++)
                if (outputs[i].release) {
                    outputs[i].release(&outputs[i]);
                    outputs_released++;
                    if (outputs[i].release) violation(V_RELEASE, "release left output %zu's release set", i);
                }
        } else {
            for (i = 0; i < num && i < cap; i++) outputs_released += outputs[i].release != NULL;
            api.release_outputs(outputs, num);
            for (i = 0; i < num && i < cap; i++)
                if (outputs[i].release) violation(V_RELEASE, "release_outputs left output %zu's release set", i);
        }
        if (outputs_allocated != outputs_released) violation(V_LEAK, "%lu outputs allocated, %lu released", outputs_allocated, outputs_released);
    } else {
        for (i = 0; outputs && i < cap; i++)
            if (outputs[i].release) violation(V_LEAK, "failed with %d but output %zu holds an allocation", st, i);
        if (st == SMI_ERROR_BUFFER_TOO_SMALL && kind == KIND_ECHO && num < cap)
            violation(V_SIZE, "echo: too small with %zu slots, asking for %zu", cap, num);
        if (st != SMI_ERROR_BUFFER_TOO_SMALL && num != before)
            violation(V_UNTOUCHED, "status %d changed *num_outputs from %zu to %zu", st, before, num);
    }
}

/* ---------------------------------------------------------------- untyped inference */

static void op_inference(rd_t* r, mlos_core_t* c, int bad) {
    static const size_t caps[] = {0, 0, 0, 1, 64, 4096, 1u << 20, 0};
    const char* id = pick_id(r);
    uint8_t sel = u8(r), osel;
    const void* input = NULL;
    size_t in_size = 0, cap, size, before;
    void* output;
    int st, kind = kind_of(id);
    switch (sel % 8) {
    case IN_NULL_ZERO: break;
    case IN_NULL_SIZE: in_size = (size_t)u16(r) + 1; break; /* the core checks this one */
    case IN_JSON: {
        char json[8192];
        uint8_t k = u8(r);
        size_t rows = k % 4, cols = (size_t[]){16, 15, 8}[(k >> 2) % 3], row, col, n;
        n = (size_t)snprintf(json, sizeof json, "{\"%s\":[", k & 0x40 ? "input_ids" : "input");
        for (row = 0; row < rows; row++) {
            json[n++] = '[';
            for (col = 0; col < cols; col++) n += (size_t)snprintf(json + n, sizeof json - n, "%s%s", col ? "," : "", k & 0x80 ? "1" : "0.5");
            n += (size_t)snprintf(json + n, sizeof json - n, "]%s", row + 1 < rows ? "," : "");
        }
        snprintf(json + n, sizeof json - n, "]}");
        if (k & 0x20) mutate(r, json, sizeof json);
        in_size = strlen(json);
        input = memcpy(region_end(&r_untyped_in, in_size), json, in_size);
        break;
    }
    case IN_FP32: {
        size_t k;
        float* f;
        in_size = (size_t)(u8(r) % 8) * 16 * sizeof(float);
        f = region_end(&r_untyped_in, in_size);
        for (k = 0; k < in_size / sizeof(float); k++) f[k] = (float)k * 0.25f - 1.0f;
        input = f;
        break;
    }
    case IN_ZEROS:
        in_size = u32(r) % DATA_CAP;
        input = memset(region_end(&r_untyped_in, in_size), 0, in_size);
        break;
    default: {
        const uint8_t* bytes;
        in_size = take(r, u16(r) % 4096, &bytes);
        input = memcpy(region_end(&r_untyped_in, in_size), bytes, in_size);
    }
    }
    osel = u8(r);
    cap = caps[osel % 8];
    if (osel % 8 == OUT_U16) cap = u16(r);
    if (osel % 8 == OUT_NULL_CAP) cap = (size_t)u16(r) + 1;
    output = osel % 8 <= OUT_NULL_CAP ? NULL : region_end(&r_untyped_out, cap);
    before = size = cap;
    TRACE("inference(%s, %s, %zu bytes, %s, cap %zu)\n", shown(id), input ? "input" : "NULL", in_size, output ? "output" : "NULL", cap);
    st = check_status(OP_INFERENCE, api.inference(c, id, input, in_size, output, &size), bad ? S(-1) : ALL_STATUSES & ~S(-8) & ~S(-9));
    if (st == SMI_SUCCESS) {
        if (size > cap) violation(V_SIZE, "%zu bytes written into %zu", size, cap);
        if (kind == KIND_ECHO && (size != in_size || (size && memcmp(output, input, size) != 0)))
            violation(V_OUTPUT, "echo returned %zu bytes for %zu, or other bytes", size, in_size);
    } else if (st == SMI_ERROR_BUFFER_TOO_SMALL) {
        if (kind == KIND_ECHO && size != in_size) violation(V_SIZE, "echo: too small, needing %zu for %zu bytes", size, in_size);
    } else if (size != before)
        violation(V_UNTOUCHED, "status %d changed *output_size from %zu to %zu", st, before, size);
}

/* ---------------------------------------------------------------- registry ops */

static void op_register(rd_t* r, mlos_core_t* c, int bad) {
    const char* id = pick_id(r);
    const char* plugin = pick_plugin(r);
    const char* path = pick_path(r);
    const char* options = pick_json(r, &r_options, 1);
    char json[65536];
    int st;
    TRACE("register_model(%s, %s, %s, %s)\n", shown(id), shown(plugin), shown(path), shown(options));
    st = check_status(OP_REGISTER, api.register_model(c, id, plugin, path, options),
                          bad ? S(-1) : OK_BIT | S(-1) | S(-3) | S(-4) | S(-7) | S(-8));
    if (st != SMI_SUCCESS) return;
    track_registered(id, plugin);
    st = info_of(id, json, sizeof json);
    if (st != SMI_SUCCESS) violation(V_REGISTRY, "registered, but model_info answers %d: %s", st, api.last_error());
    else if (!strstr(json, "\"status\":\"registered\"")) violation(V_REGISTRY, "just registered, yet: %.600s", json);
}

static void op_load(rd_t* r, mlos_core_t* c, int bad) {
    const char* id = pick_id(r);
    char json[65536];
    int st;
    TRACE("load_model(%s)\n", shown(id));
    st = check_status(OP_LOAD, api.load_model(c, id), bad ? S(-1) : ALL_STATUSES & ~S(-6) & ~S(-8) & ~S(-9));
    if (st == SMI_SUCCESS && info_of(id, json, sizeof json) == SMI_SUCCESS && !strstr(json, "\"status\":\"loaded\""))
        violation(V_REGISTRY, "loaded, yet: %.600s", json);
}

static void op_unload(rd_t* r, mlos_core_t* c, int bad) {
    const char* id = pick_id(r);
    char json[65536];
    int st;
    TRACE("unload_model(%s)\n", shown(id));
    st = check_status(OP_UNLOAD, api.unload_model(c, id), bad ? S(-1) : OK_BIT | S(-1) | S(-3) | S(-5));
    if (st == SMI_SUCCESS && info_of(id, json, sizeof json) == SMI_SUCCESS && !strstr(json, "\"status\":\"registered\""))
        violation(V_REGISTRY, "unloaded, yet: %.600s", json);
}

static void op_unregister(rd_t* r, mlos_core_t* c, int bad) {
    const char* id = pick_id(r);
    char json[256];
    int st;
    TRACE("unregister_model(%s)\n", shown(id));
    st = check_status(OP_UNREGISTER, api.unregister_model(c, id), bad ? S(-1) : OK_BIT | S(-1) | S(-3) | S(-5));
    if (st != SMI_SUCCESS) return;
    track_unregistered(id);
    st = info_of(id, json, sizeof json);
    if (st != SMI_ERROR_NOT_FOUND) violation(V_REGISTRY, "unregistered, but model_info answers %d", st);
}

static void op_allocate(rd_t* r, mlos_core_t* c, int bad) {
    static const uint64_t amounts[] = {0, 1, 2, 3, (uint64_t)1 << 30, (uint64_t)1 << 63, UINT64_MAX};
    const char* id = pick_id(r);
    uint8_t rc = u8(r);
    size_t n = rc % 4, i;
    smi_resource_req_t* reqs = NULL;
    if (rc >= REQS_NULL) n = rc & 3;
    else reqs = region_end(&r_reqs, (n ? n : 1) * sizeof *reqs);
    for (i = 0; reqs && i < n; i++) {
        uint8_t t = u8(r), a = u8(r);
        reqs[i].type = (smi_resource_type_t)(t >= 0xf0 ? u32(r) : t % 6u);
        reqs[i].device_id = (int32_t)(int8_t)u8(r);
        reqs[i].amount = a % 8 == 7 ? u64(r) : amounts[a % 8];
    }
    TRACE("allocate_resources(%s, %s, %zu)\n", shown(id), reqs ? "reqs" : "NULL", n);
    for (i = 0; reqs && i < n; i++)
        TRACE("    type %d device %d amount %llu\n", (int)reqs[i].type, reqs[i].device_id, (unsigned long long)reqs[i].amount);
    check_status(OP_ALLOCATE, api.allocate_resources(c, id, reqs, n), bad ? S(-1) : OK_BIT | S(-1) | S(-3) | S(-4) | S(-5));
}

static void op_deallocate(rd_t* r, mlos_core_t* c, int bad) {
    const char* id = pick_id(r);
    TRACE("deallocate_resources(%s)\n", shown(id));
    check_status(OP_DEALLOCATE, api.deallocate_resources(c, id), bad ? S(-1) : OK_BIT | S(-1) | S(-3) | S(-4) | S(-5));
}

static void op_release(rd_t* r) {
    uint8_t sel = u8(r), n = u8(r) % MAX_OUTPUTS;
    smi_tensor_t* t = region_end(&r_outputs, MAX_OUTPUTS * sizeof *t);
    size_t i;
    memset(t, 0, MAX_OUTPUTS * sizeof *t);
    TRACE("release_outputs case %d, count %u\n", sel % 3, n);
    switch (sel % 3) {
    case 0: api.release_outputs(NULL, n); break;
    case 1: api.release_outputs(t, n); break;
    default:
        for (i = 0; i < MAX_OUTPUTS; i++) t[i].release = input_release_called; /* count 0: none may be called */
        api.release_outputs(t, 0);
    }
}

static const char* plugin_file(char* buf, size_t n, const char* dir, const char* name) {
    snprintf(buf, n, "%s/%s", dir, name);
    return buf;
}

static void op_load_plugin(rd_t* r, mlos_core_t* c, int bad) {
    static const char* const fixtures[] = {"libmlos_bad_major_plugin.so", "libmlos_bad_null_entry_plugin.so",
                                           "libmlos_bad_init_plugin.so", "libmlos_no_entry.so"};
    char buf[4096];
    uint8_t sel = u8(r), isel, csel;
    const char* path;
    const char* id = NULL;
    const char* config = NULL;
    const uint8_t* bytes;
    size_t n;
    switch (sel % 10) {
    case PP_ECHO: path = echo_so; break;
    case PP_ONNX: path = onnx_so; break;
    case PP_BAD_MAJOR: case PP_BAD_NULL: case PP_BAD_INIT: case PP_NO_ENTRY:
        path = plugin_file(buf, sizeof buf, fixture_dir, fixtures[sel % 10 - PP_BAD_MAJOR]);
        break;
    case PP_MISSING: path = "/nonexistent/libmlos_fuzz.so"; break;
    case PP_NOT_ELF: path = model_file(buf, sizeof buf, "mlp.onnx"); break;
    case PP_DIR: path = model_dir; break;
    default: path = NULL;
    }
    path = place_str(&r_path, path);
    isel = u8(r);
    switch (isel % 6) {
    case 0: break;
    case 1: id = place_str(&r_plugin, "fuzz-plugin"); break;
    case 2: id = place_str(&r_plugin, "csharp-echo"); break;
    case 3: id = place_str(&r_plugin, ""); break;
    case 4: id = pick_id_in(r, &r_plugin); break;
    default:
        n = take(r, u8(r) % 32, &bytes);
        id = place(&r_plugin, bytes, n);
    }
    csel = u8(r);
    if (csel % 4 == 1) config = place_str(&r_config, "test-config");
    else if (csel % 4 == 2) config = place_str(&r_config, "{}");
    else if (csel % 4 == 3) config = pick_json(r, &r_config, 1);
    /* Every path offered is refused (plugins already owned, broken fixtures, no such file), so the
     * core's plugin set is the same for every input. */
    TRACE("load_plugin(%s, %s, %s)\n", shown(path), shown(id), shown(config));
    check_status(OP_LOAD_PLUGIN, api.load_plugin(c, path, id, config), bad ? S(-1) : S(-1) | S(-3) | S(-5) | S(-8) | S(-9));
}

static void op_create(rd_t* r) {
    char text[8192], guide[4096], bad_init[4096];
    uint8_t sel = u8(r);
    const char* config = NULL;
    mlos_core_t* second = NULL;
    int st;
    switch (sel % 8) {
    case CC_NULL: break;
    case CC_EMPTY: config = place_str(&r_config, ""); break;
    case CC_OBJECT: config = place_str(&r_config, "{}"); break;
    case CC_NO_PLUGINS: config = place_str(&r_config, "{\"plugins\":[]}"); break;
    case CC_OWNED:
        snprintf(text, sizeof text, "{\"plugins\":[{\"path\":\"%s\",\"config\":\"test-config\"},{\"path\":\"%s\",\"id\":\"x\"}]}",
                 plugin_file(bad_init, sizeof bad_init, fixture_dir, "libmlos_guide_c_plugin.so"), echo_so);
        config = place_str(&r_config, text);
        break;
    case CC_GUIDE:
        snprintf(text, sizeof text, "{\"plugins\":[{\"path\":\"%s\",\"id\":\"g\",\"config\":\"test-config\"},{\"path\":\"%s\"}]}",
                 plugin_file(guide, sizeof guide, fixture_dir, "libmlos_guide_plugin.so"),
                 plugin_file(bad_init, sizeof bad_init, fixture_dir, sel & 8 ? "libmlos_bad_init_plugin.so" : "libmlos_guide_c_plugin.so"));
        config = place_str(&r_config, text);
        break;
    default: config = pick_json(r, &r_config, 0); break;
    }
    TRACE("create(%s)\n", shown(config));
    st = check_status(OP_CREATE, api.create(config, &second), OK_BIT | S(-1) | S(-3) | S(-5) | S(-8) | S(-9));
    if (st != SMI_SUCCESS) {
        if (second != NULL) violation(V_UNTOUCHED, "create failed with %d but set *core", st);
        return;
    }
    call_core = second;
    text_check(OP_LIST_PLUGINS, r, call_list_plugins, NULL, OK_BIT | S(-1) | S(-6), 1);
    if (sel % 8 == CC_GUIDE && !(sel & 8)) {
        /* A model loaded and used on the guide's plugin, left for destroy to unregister. */
        char out[64];
        size_t size = sizeof out;
        TRACE("second core: register, load and run a model on the guide plugin\n");
        if (check_status(OP_REGISTER, api.register_model(second, "m", "g", NULL, NULL), OK_BIT) == 0 &&
            check_status(OP_LOAD, api.load_model(second, "m"), OK_BIT) == 0 &&
            check_status(OP_INFERENCE, api.inference(second, "m", "guide", 5, out, &size), OK_BIT) == 0 &&
            (size != 5 || memcmp(out, "guide", 5) != 0))
            violation(V_OUTPUT, "the guide plugin's echo gave %zu bytes", size);
    }
    TRACE("destroy(second core), twice\n");
    if (check_status(OP_CREATE, api.destroy(second), OK_BIT) != 0) violation(V_STATUS, "destroy of a new core failed");
    if (check_status(OP_CREATE, api.destroy(second), S(-1)) != SMI_ERROR_INVALID_PARAM)
        violation(V_STATUS, "a second destroy succeeded");
}

/* ---------------------------------------------------------------- setup and reset */

static const char* baseline_options[] = {NULL, "{\"dynamic_batching\":{\"max_batch_size\":8,\"max_queue_delay_us\":0}}", NULL};

static void must(int status, const char* what) {
    if (status != SMI_SUCCESS) {
        fprintf(stderr, "core_api_fuzz: %s failed: %d %s\n", what, status, api.last_error() ? api.last_error() : "");
        abort();
    }
}

/* Every input starts from the same core: three models, loaded, no resources held. */
static void reset(void) {
    char json[65536], mlp[4096];
    size_t size = sizeof json;
    int i;
    current_call = "reset";
    TRACE("-- reset\n");
    for (i = 0; i < num_tracked; i++)
        check_status(OP_UNREGISTER, api.unregister_model(core, tracked[i].id), OK_BIT | S(-1) | S(-3) | S(-5));
    num_tracked = 0;
    for (i = 0; i < 3; i++) {
        if (info_of(baseline_ids[i], json, sizeof json) == SMI_ERROR_NOT_FOUND)
            must(api.register_model(core, baseline_ids[i], i == 2 ? "onnx-runtime" : "csharp-echo",
                                    i == 2 ? model_file(mlp, sizeof mlp, "mlp.onnx") : NULL, baseline_options[i]),
                 "re-registering a baseline model");
        must(api.load_model(core, baseline_ids[i]), "reloading a baseline model");
        must(api.deallocate_resources(core, baseline_ids[i]), "deallocating a baseline model");
        baseline_bound[i] = 1;
    }
    must(api.list_models(core, json, &size), "list_models");
    if (!strstr(json, "\"total\":3}")) violation(V_REGISTRY, "after reset the core lists: %.600s", json);
}

static void env_or(char* dst, size_t n, const char* var, const char* fallback) {
    const char* v = getenv(var);
    snprintf(dst, n, "%s", v && *v ? v : fallback);
}

int LLVMFuzzerInitialize(int* argc, char*** argv) {
    char config[16384];
    const char* skip;
    int i;
    size_t k;
    for (i = 1; i < *argc; i++)
        if (strncmp((*argv)[i], "-mlos_write_corpus=", 19) == 0) exit(mlos_write_corpus((*argv)[i] + 19));

    env_or(build_dir, sizeof build_dir, "MLOS_BUILD_DIR", MLOS_FUZZ_BUILD_DIR);
    env_or(fixture_dir, sizeof fixture_dir, "MLOS_FIXTURE_DIR", MLOS_FUZZ_FIXTURE_DIR);
    env_or(model_dir, sizeof model_dir, "MLOS_ONNX_MODELS", MLOS_FUZZ_MODEL_DIR);
    skip = getenv("MLOS_FUZZ_SKIP");
    tracing = getenv("MLOS_FUZZ_TRACE") != NULL;
    stats_wanted = getenv("MLOS_FUZZ_STATS") != NULL;
    for (k = 0; skip && k < V_COUNT; k++) skip_class[k] = strstr(skip, class_names[k]) != NULL;
    snprintf(echo_so, sizeof echo_so, "%s/plugins/libmlos_echo_plugin.so", build_dir);
    snprintf(onnx_so, sizeof onnx_so, "%s/plugins/libmlos_onnx_plugin.so", build_dir);

    r_id = region_new(4096);
    r_plugin = region_new(4096);
    r_path = region_new(8192);
    r_options = region_new(16384);
    r_config = region_new(16384);
    r_inputs = region_new(BIG_INPUTS * sizeof(smi_tensor_t));
    r_outputs = region_new(BIG_INPUTS * sizeof(smi_tensor_t));
    r_untyped_in = region_new(DATA_CAP);
    r_untyped_out = region_new(DATA_CAP);
    r_text = region_new(1u << 17);
    r_reqs = region_new(4096);
    for (k = 0; k < MAX_TENSORS; k++) r_data[k] = region_new(DATA_CAP), r_name[k] = region_new(4096);
    for (k = 0; k < MAX_OUTPUTS; k++) r_outbuf[k] = region_new(OUTBUF_CAP);

    mlos_api_load(&api, build_dir);
    must(api.create(NULL, &stale_core), "create");
    must(api.destroy(stale_core), "destroy");
    snprintf(config, sizeof config, "{\"plugins\":[{\"path\":\"%s\",\"config\":\"test-config\"},{\"path\":\"%s\"}]}", echo_so, onnx_so);
    must(api.create(config, &core), "creating the fuzzed core");
    for (k = 0; k < 3; k++) baseline_bound[k] = 0;
    reset(); /* registers the three models */
    fprintf(stderr, "core_api_fuzz: core from %s, fixtures %s, models %s%s%s\n", build_dir, fixture_dir, model_dir,
            skip ? ", skipping " : "", skip ? skip : "");
    return 0;
}

static void report_skipped(void) __attribute__((destructor));
static void report_skipped(void) {
    int k;
    for (k = 0; k < num_stats; k++)
        fprintf(stderr, "stat %2d %3d %8lu %s\n", stats[k].call, stats[k].status, stats[k].count, stats[k].example);
    for (k = 0; k < V_COUNT; k++)
        if (skipped[k]) fprintf(stderr, "core_api_fuzz: %lu broken promises of class %s skipped\n", skipped[k], class_names[k]);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const char* const names[] = {"register_model", "load_model", "unload_model", "unregister_model", "inference",
                                        "infer", "model_info", "list_models", "list_plugins", "allocate_resources",
                                        "deallocate_resources", "release_outputs", "load_plugin", "create/destroy",
                                        "smi_layout", "infer"};
    rd_t r;
    int ops;
    r.p = data;
    r.n = size;
    for (ops = 0; ops < MAX_OPS && r.n > 0; ops++) {
        uint8_t opbyte = u8(&r);
        int bad = (opbyte & BAD_CORE) == BAD_CORE;
        mlos_core_t* c = bad ? pick_bad_core(&r) : core;
        current_call = names[opbyte & 15];
        call_core = c;
        num_args = 0;
        switch (opbyte & 15) {
        case OP_REGISTER: op_register(&r, c, bad); break;
        case OP_LOAD: op_load(&r, c, bad); break;
        case OP_UNLOAD: op_unload(&r, c, bad); break;
        case OP_UNREGISTER: op_unregister(&r, c, bad); break;
        case OP_INFERENCE: op_inference(&r, c, bad); break;
        case OP_INFER: case OP_INFER2: op_infer(&r, c, bad); break;
        case OP_MODEL_INFO: {
            const char* id = pick_id(&r);
            text_check(OP_MODEL_INFO, &r, call_model_info, id, bad ? S(-1) : OK_BIT | S(-1) | S(-3) | S(-6), 1);
            break;
        }
        case OP_LIST_MODELS: text_check(OP_LIST_MODELS, &r, call_list_models, NULL, bad ? S(-1) : OK_BIT | S(-1) | S(-6), 1); break;
        case OP_LIST_PLUGINS: text_check(OP_LIST_PLUGINS, &r, call_list_plugins, NULL, bad ? S(-1) : OK_BIT | S(-1) | S(-6), 1); break;
        case OP_ALLOCATE: op_allocate(&r, c, bad); break;
        case OP_DEALLOCATE: op_deallocate(&r, c, bad); break;
        case OP_RELEASE: op_release(&r); break;
        case OP_LOAD_PLUGIN: op_load_plugin(&r, c, bad); break;
        case OP_CREATE: op_create(&r); break;
        default: text_check(OP_LAYOUT, &r, call_layout, NULL, OK_BIT | S(-1) | S(-6), 0); break;
        }
    }
    reset();
    return 0;
}
