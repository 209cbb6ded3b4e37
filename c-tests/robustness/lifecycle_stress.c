/* Lifecycle stress of libmlos_core.so (issue #12): 16 threads loop register / load / infer (typed
 * and untyped) / model_info / allocate_resources / unload / unregister over a small shared pool of model ids, so that
 * every call races every other on the same model: twelve threads on the C# echo plugin (plain,
 * with a delay, or with dynamic batching), four on the ONNX mlp (plain or batched).
 *
 *   lifecycle_stress <build_dir> <seconds> [onnx_models_dir]
 *
 * Each status must be one that call can give in that race, and each answer must be right: echo
 * outputs equal their inputs, mlp rows equal a reference computed alone at start (so a batch that
 * mixed up rows between threads is caught). A watchdog fails the run if no call returns for 10 s
 * (a deadlock), and samples RSS every second: the last quarter's peak may exceed the first
 * quarter's by at most 64 MB. */
#include <math.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "json_check.h"
#include "test_support.h"

#define THREADS 16
#define ECHO_IDS 4
#define ONNX_IDS 2
#ifndef WATCHDOG_S
#define WATCHDOG_S 10 /* seconds without a call returning that count as a deadlock */
#endif
#define RSS_GROWTH_MB 64
#define MAX_SAMPLES 4096
#define REF_ROWS 8
#define MAX_REPORTS 20

enum { C_REGISTER, C_LOAD, C_INFERENCE, C_INFER, C_MODEL_INFO, C_LIST, C_ALLOCATE, C_DEALLOCATE, C_UNLOAD, C_UNREGISTER, C_COUNT };
static const char* const call_names[C_COUNT] = {"register_model", "load_model", "inference", "infer", "model_info",
                                                "list_models", "allocate_resources", "deallocate_resources",
                                                "unload_model", "unregister_model"};
static const char* const status_names[11] = {"SUCCESS", "INVALID_PARAM", "OUT_OF_MEMORY", "NOT_FOUND", "NOT_SUPPORTED",
                                             "RUNTIME", "BUFFER_TOO_SMALL", "INVALID_STATE", "ALREADY_EXISTS",
                                             "VERSION_MISMATCH", "BUSY"};
#define S(status) (1u << -(status))
/* What each call may answer while others register, load, unload and unregister the same id. */
static unsigned allowed[C_COUNT] = {
    [C_REGISTER] = S(0) | S(SMI_ERROR_ALREADY_EXISTS),
    [C_LOAD] = S(0) | S(SMI_ERROR_NOT_FOUND),
    [C_INFERENCE] = S(0) | S(SMI_ERROR_NOT_FOUND) | S(SMI_ERROR_INVALID_STATE) | S(SMI_ERROR_BUSY),
    [C_INFER] = S(0) | S(SMI_ERROR_NOT_FOUND) | S(SMI_ERROR_INVALID_STATE) | S(SMI_ERROR_BUSY),
    [C_MODEL_INFO] = S(0) | S(SMI_ERROR_NOT_FOUND),
    [C_LIST] = S(0),
    [C_ALLOCATE] = S(0) | S(SMI_ERROR_NOT_FOUND),
    [C_DEALLOCATE] = S(0) | S(SMI_ERROR_NOT_FOUND),
    [C_UNLOAD] = S(0) | S(SMI_ERROR_NOT_FOUND),
    [C_UNREGISTER] = S(0) | S(SMI_ERROR_NOT_FOUND),
};

static mlos_api_t api;
static mlos_core_t* core;
static char mlp_path[4096];
static int have_onnx;
static float ref_in[REF_ROWS][16], ref_out[REF_ROWS][4];

static unsigned long counts[C_COUNT][12]; /* [call][-status], [11]: not an smi_status_t */
static unsigned long progress, lifecycles[2], registered, problems;
static volatile int stop;
static const char* volatile doing[THREADS];
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;

static void add(unsigned long* v, unsigned long n) { __atomic_fetch_add(v, n, __ATOMIC_RELAXED); }

static void problem(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
static void problem(const char* fmt, ...) {
    va_list ap;
    pthread_mutex_lock(&report_lock);
    if (problems++ < MAX_REPORTS) {
        fprintf(stderr, "FAIL: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\n");
    }
    pthread_mutex_unlock(&report_lock);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Counts the answer, checks it is allowed here and that a failure says why; returns it. */
static int answer(int call, const char* id, int status) {
    const char* err = status ? api.last_error() : NULL;
    add(&progress, 1);
    if (status > 0 || status < SMI_ERROR_BUSY) {
        add(&counts[call][11], 1);
        problem("%s('%s') returned %d, not an smi_status_t", call_names[call], id, status);
        return status;
    }
    add(&counts[call][-status], 1);
    if (status && (err == NULL || err[0] == 0)) problem("%s('%s') failed with %d and no last error", call_names[call], id, status);
    if (!(allowed[call] & S(status)))
        problem("%s('%s') answered %s (%d) in a race where it may not: %s", call_names[call], id,
                status_names[-status], status, err ? err : "");
    return status;
}

typedef struct {
    int index;
    uint64_t rng;
    unsigned long iteration;
} worker_t;

static uint32_t next(worker_t* w) {
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return (uint32_t)(w->rng >> 16);
}

/* ---------------------------------------------------------------- the echo models */

static void echo_untyped(worker_t* w, const char* id) {
    uint8_t in[512], out[512];
    size_t n = 1 + next(w) % sizeof in, size = sizeof out, i;
    int st;
    for (i = 0; i < n; i++) in[i] = (uint8_t)(w->index * 37 + w->iteration + i);
    doing[w->index] = "inference";
    st = answer(C_INFERENCE, id, api.inference(core, id, in, n, out, &size));
    if (st == SMI_SUCCESS && (size != n || memcmp(in, out, n) != 0))
        problem("inference('%s'): echo gave %zu bytes for %zu, or other bytes", id, size, n);
}

/* INT32 [rows, 3], every value unique to this thread and request: a batch that mixed rows up between
 * requests gives some thread another's values. Output 0 in a caller buffer or allocated. */
static void echo_typed(worker_t* w, const char* id) {
    int32_t in[4 * 3], into[4 * 3];
    size_t rows = 1 + next(w) % 4, i, num = 2;
    smi_tensor_t input, outputs[2];
    int st, caller = next(w) & 1;
    for (i = 0; i < rows * 3; i++) in[i] = (int32_t)((w->index << 24) | ((w->iteration & 0xffff) << 8) | i);
    memset(&input, 0, sizeof input);
    input.name = "input_0";
    input.dtype = SMI_DTYPE_INT32;
    input.ndim = 2;
    input.shape[0] = (int64_t)rows;
    input.shape[1] = 3;
    input.data = in;
    input.byte_size = rows * 3 * sizeof(int32_t);
    memset(outputs, 0, sizeof outputs);
    if (caller) {
        outputs[0].data = into;
        outputs[0].byte_size = input.byte_size;
    }
    doing[w->index] = "infer";
    st = answer(C_INFER, id, api.infer(core, id, &input, 1, outputs, &num));
    if (st != SMI_SUCCESS) {
        if (outputs[0].release || outputs[1].release) problem("infer('%s') failed with %d but left an output allocated", id, st);
        return;
    }
    if (num != 1 || outputs[0].dtype != SMI_DTYPE_INT32 || outputs[0].ndim != 2 || outputs[0].shape[0] != (int64_t)rows ||
        outputs[0].shape[1] != 3 || outputs[0].byte_size != input.byte_size || outputs[0].data == NULL ||
        memcmp(outputs[0].data, in, input.byte_size) != 0)
        problem("infer('%s'): echo of INT32 [%zu,3] came back as %zu outputs, dtype %d, [%lld,%lld], %zu bytes%s", id, rows, num,
                (int)outputs[0].dtype, (long long)outputs[0].shape[0], (long long)outputs[0].shape[1], outputs[0].byte_size,
                outputs[0].data && memcmp(outputs[0].data, in, input.byte_size < outputs[0].byte_size ? input.byte_size : outputs[0].byte_size)
                    ? " with other values (another request's rows?)" : "");
    if (caller && outputs[0].data != into) problem("infer('%s'): the caller buffer was replaced", id);
    api.release_outputs(outputs, num);
}

/* ---------------------------------------------------------------- the mlp models */

static int close_to(float got, float want) { return fabsf(got - want) <= 1e-4f * (1.0f + fabsf(want)); }

/* rows of the reference inputs, picked at random; each output row must match its reference. */
static void mlp_call(worker_t* w, const char* id, int typed) {
    float in[4][16], out[4][4];
    int pick[4];
    size_t rows = 1 + next(w) % 4, r, c, num = 1, size = sizeof out;
    smi_tensor_t input, output;
    int st;
    const float* got;
    for (r = 0; r < rows; r++) {
        pick[r] = (int)(next(w) % REF_ROWS);
        memcpy(in[r], ref_in[pick[r]], sizeof in[r]);
    }
    if (!typed) {
        doing[w->index] = "inference";
        st = answer(C_INFERENCE, id, api.inference(core, id, in, rows * sizeof in[0], out, &size));
        if (st != SMI_SUCCESS) return;
        if (size != rows * sizeof out[0]) {
            problem("inference('%s'): %zu bytes for %zu mlp rows", id, size, rows);
            return;
        }
        got = &out[0][0];
    } else {
        memset(&input, 0, sizeof input);
        memset(&output, 0, sizeof output);
        input.name = "input";
        input.dtype = SMI_DTYPE_FP32;
        input.ndim = 2;
        input.shape[0] = (int64_t)rows;
        input.shape[1] = 16;
        input.data = in;
        input.byte_size = rows * sizeof in[0];
        doing[w->index] = "infer";
        st = answer(C_INFER, id, api.infer(core, id, &input, 1, &output, &num));
        if (st != SMI_SUCCESS) {
            if (output.release) problem("infer('%s') failed with %d but left its output allocated", id, st);
            return;
        }
        if (num != 1 || output.dtype != SMI_DTYPE_FP32 || output.ndim != 2 || output.shape[0] != (int64_t)rows ||
            output.shape[1] != 4 || output.byte_size != rows * sizeof out[0] || output.data == NULL) {
            problem("infer('%s'): mlp [%zu,16] gave %zu outputs, [%lld,%lld], %zu bytes", id, rows, num,
                    (long long)output.shape[0], (long long)output.shape[1], output.byte_size);
            api.release_outputs(&output, num);
            return;
        }
        memcpy(out, output.data, output.byte_size);
        api.release_outputs(&output, num);
        got = &out[0][0];
    }
    for (r = 0; r < rows; r++)
        for (c = 0; c < 4; c++)
            if (!close_to(got[r * 4 + c], ref_out[pick[r]][c])) {
                problem("%s('%s'): row %zu (reference row %d) output %zu is %g, not %g", typed ? "infer" : "inference", id, r,
                        pick[r], c, got[r * 4 + c], ref_out[pick[r]][c]);
                return;
            }
}

/* ---------------------------------------------------------------- one lifecycle */

static void model_info(worker_t* w, const char* id) {
    static __thread char json[65536];
    size_t size = sizeof json, at;
    const char* why;
    doing[w->index] = "model_info";
    if (answer(C_MODEL_INFO, id, api.model_info(core, id, json, &size)) != SMI_SUCCESS) return;
    if ((why = json_problem(json, size - 1, &at)) != NULL) problem("model_info('%s'): invalid JSON (%s at %zu)", id, why, at);
    /* "loading" and "unregistering" are the states while the plugin's load_model runs and while
     * unregister drains: the answer then says what it could not ask in io_error / info_error. */
    if (!strstr(json, "\"status\":\"registered\"") && !strstr(json, "\"status\":\"loaded\"") &&
        !strstr(json, "\"status\":\"unloading\"") && !strstr(json, "\"status\":\"loading\"") &&
        !strstr(json, "\"status\":\"unregistering\""))
        problem("model_info('%s'): no known status in %.300s", id, json);
}

static void list_models(worker_t* w) {
    static __thread char json[65536];
    size_t size = sizeof json, at;
    const char* why;
    doing[w->index] = "list_models";
    if (answer(C_LIST, "", api.list_models(core, json, &size)) != SMI_SUCCESS) return;
    if ((why = json_problem(json, size - 1, &at)) != NULL) problem("list_models: invalid JSON (%s at %zu)", why, at);
}

static void lifecycle(worker_t* w) {
    static const char* const echo_options[] = {
        NULL, "{\"config\":{\"delay_us\":200}}", "{\"dynamic_batching\":{\"max_batch_size\":8,\"max_queue_delay_us\":300}}",
        "{\"dynamic_batching\":{\"max_batch_size\":4,\"max_queue_delay_us\":0}}"};
    static const char* const onnx_options[] = {
        "{\"config\":{\"intra_op_threads\":1}}",
        "{\"config\":{\"intra_op_threads\":1},\"dynamic_batching\":{\"max_batch_size\":8,\"max_queue_delay_us\":300}}"};
    int onnx = have_onnx && w->index % 4 == 3;
    char id[16];
    int k, calls;
    snprintf(id, sizeof id, onnx ? "o%u" : "e%u", next(w) % (onnx ? ONNX_IDS : ECHO_IDS));
    doing[w->index] = "register_model";
    if (answer(C_REGISTER, id, onnx ? api.register_model(core, id, "onnx-runtime", mlp_path, onnx_options[next(w) % 2])
                                    : api.register_model(core, id, "csharp-echo", NULL, echo_options[next(w) % 4])) == 0)
        add(&registered, 1);
    if (next(w) % 8) {
        doing[w->index] = "load_model";
        answer(C_LOAD, id, api.load_model(core, id));
    }
    calls = 1 + (int)(next(w) % 6);
    for (k = 0; k < calls && !stop; k++) {
        int typed = next(w) & 1;
        if (onnx) mlp_call(w, id, typed);
        else if (typed) echo_typed(w, id);
        else echo_untyped(w, id);
        w->iteration++;
    }
    if (next(w) & 1) model_info(w, id);
    if (next(w) % 4 == 0) list_models(w);
    /* CPU threads: the ONNX plugin rebuilds its session for them while other threads infer. */
    if (next(w) % 4 == 0) {
        smi_resource_req_t req = {SMI_RESOURCE_CPU_THREADS, 0, 1 + next(w) % 2};
        doing[w->index] = "allocate_resources";
        answer(C_ALLOCATE, id, api.allocate_resources(core, id, &req, 1));
    }
    if (next(w) % 8 == 0) {
        doing[w->index] = "deallocate_resources";
        answer(C_DEALLOCATE, id, api.deallocate_resources(core, id));
    }
    if (next(w) % 3) {
        doing[w->index] = "unload_model";
        answer(C_UNLOAD, id, api.unload_model(core, id));
    }
    if (next(w) & 1) {
        doing[w->index] = "unregister_model";
        if (answer(C_UNREGISTER, id, api.unregister_model(core, id)) == 0) add(&lifecycles[onnx], 1);
    }
    doing[w->index] = "between calls";
}

static void* worker(void* arg) {
    worker_t* w = (worker_t*)arg;
    while (!stop) lifecycle(w);
    doing[w->index] = "done";
    return NULL;
}

/* ---------------------------------------------------------------- watchdog and RSS */

static double rss_mb[MAX_SAMPLES];
static int num_samples;
static volatile int watchdog_stop;
static const char* volatile phase = "running";


static void* watchdog(void* arg) {
    unsigned long last = (unsigned long)-1;
    int idle = 0, t;
    (void)arg;
    while (!watchdog_stop) {
        unsigned long now;
        sleep(1);
        if (num_samples < MAX_SAMPLES) rss_mb[num_samples++] = (mlos_rss_bytes() / (1024.0 * 1024.0));
        now = __atomic_load_n(&progress, __ATOMIC_RELAXED);
        idle = now == last ? idle + 1 : 0;
        last = now;
        if (idle >= WATCHDOG_S) {
            fprintf(stderr, "FAIL: deadlock? no call returned for %d s (%s, after %lu calls). Threads were in:\n", idle,
                    phase, now);
            for (t = 0; t < THREADS; t++) fprintf(stderr, "  thread %2d: %s\n", t, doing[t] ? doing[t] : "?");
            fprintf(stderr, "lifecycle_stress: FAIL (hang)\n");
            _exit(1);
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------- setup, run, report */

/* Setup and teardown calls that must succeed. */
static int must(int status, const char* what) {
    if (status != SMI_SUCCESS) problem("%s failed with %d: %s", what, status, api.last_error() ? api.last_error() : "");
    return status == SMI_SUCCESS;
}

/* The mlp's answer for REF_ROWS rows, run alone on a model of its own. */
static void make_reference(void) {
    smi_tensor_t input, output;
    size_t num = 1, r, c;
    for (r = 0; r < REF_ROWS; r++)
        for (c = 0; c < 16; c++) ref_in[r][c] = (float)((int)((r * 16 + c) * 7919 % 200) - 100) / 50.0f;
    if (!must(api.register_model(core, "reference", "onnx-runtime", mlp_path, NULL), "registering the reference mlp") ||
        !must(api.load_model(core, "reference"), "loading the reference mlp"))
        exit(2);
    memset(&input, 0, sizeof input);
    memset(&output, 0, sizeof output);
    input.name = "input";
    input.dtype = SMI_DTYPE_FP32;
    input.ndim = 2;
    input.shape[0] = REF_ROWS;
    input.shape[1] = 16;
    input.data = ref_in;
    input.byte_size = sizeof ref_in;
    output.data = ref_out;
    output.byte_size = sizeof ref_out;
    if (!must(api.infer(core, "reference", &input, 1, &output, &num), "the reference inference") ||
        !must(api.unregister_model(core, "reference"), "unregistering the reference mlp"))
        exit(2);
}

static double peak(int from, int to) {
    double m = 0;
    int i;
    for (i = from; i < to; i++)
        if (rss_mb[i] > m) m = rss_mb[i];
    return m;
}

static void print_counts(void) {
    int c, s;
    unsigned long total = 0;
    for (c = 0; c < C_COUNT; c++) {
        printf("  %-21s", call_names[c]);
        for (s = 0; s < 12; s++)
            if (counts[c][s]) {
                printf(" %s %lu", s < 11 ? status_names[s] : "OTHER", counts[c][s]);
                total += counts[c][s];
            }
        printf("\n");
    }
    printf("lifecycle_stress: %lu calls, %lu registrations, %lu lifecycles completed (register .. unregister: %lu echo, %lu mlp)\n",
           total, registered, lifecycles[0] + lifecycles[1], lifecycles[0], lifecycles[1]);
}

int main(int argc, char** argv) {
    char config[16384];
    pthread_t threads[THREADS], dog;
    worker_t workers[THREADS];
    double seconds, started, q1, q4;
    int t, i, quarter, rss_ok;
    if (argc < 3 || argc > 4 || (seconds = atof(argv[2])) <= 0) {
        fprintf(stderr, "usage: %s <build_dir> <seconds> [onnx_models_dir]\n", argv[0]);
        return 2;
    }
    mlos_api_load(&api, argv[1]);
    if (argc == 4) {
        snprintf(mlp_path, sizeof mlp_path, "%s/mlp.onnx", argv[3]);
        have_onnx = access(mlp_path, R_OK) == 0;
        if (!have_onnx) fprintf(stderr, "lifecycle_stress: no %s: echo only\n", mlp_path);
    }
    snprintf(config, sizeof config, "{\"plugins\":[{\"path\":\"%s/plugins/libmlos_echo_plugin.so\"}%s%s%s]}", argv[1],
             have_onnx ? ",{\"path\":\"" : "", have_onnx ? argv[1] : "", have_onnx ? "/plugins/libmlos_onnx_plugin.so\"}" : "");
    if (!must(api.create(config, &core), "creating the core")) return 2;
    if (have_onnx) make_reference();

    pthread_create(&dog, NULL, watchdog, NULL);
    started = now_s();
    for (t = 0; t < THREADS; t++) {
        workers[t].index = t;
        workers[t].rng = 0x9e3779b97f4a7c15ull * (uint64_t)(t + 1);
        workers[t].iteration = 0;
        pthread_create(&threads[t], NULL, worker, &workers[t]);
    }
    while (now_s() - started < seconds) usleep(100000);
    stop = 1;
    phase = "stopping: joining the threads";
    for (t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
    phase = "cleaning up: unregister every id, destroy the core";
    for (i = 0; i < ECHO_IDS + ONNX_IDS; i++) {
        char id[16];
        snprintf(id, sizeof id, i < ECHO_IDS ? "e%d" : "o%d", i < ECHO_IDS ? i : i - ECHO_IDS);
        answer(C_UNREGISTER, id, api.unregister_model(core, id));
    }
    must(api.destroy(core), "destroying the core");
    watchdog_stop = 1;
    pthread_join(dog, NULL);

    printf("lifecycle_stress: %d threads for %.1f s (%s)\n", THREADS, now_s() - started, have_onnx ? "echo and ONNX mlp" : "echo only");
    print_counts();
    quarter = num_samples / 4;
    q1 = peak(0, quarter > 0 ? quarter : num_samples);
    q4 = peak(num_samples - (quarter > 0 ? quarter : num_samples), num_samples);
    rss_ok = num_samples == 0 || q4 <= q1 + RSS_GROWTH_MB;
    printf("lifecycle_stress: RSS first %.1f MB, last %.1f MB, max %.1f MB; first-quarter peak %.1f MB, last-quarter peak %.1f MB (%d samples)\n",
           num_samples ? rss_mb[0] : 0.0, num_samples ? rss_mb[num_samples - 1] : 0.0, peak(0, num_samples), q1, q4, num_samples);
    if (!rss_ok) problem("RSS grew: last-quarter peak %.1f MB exceeds the first-quarter peak %.1f MB by more than %d MB", q4, q1, RSS_GROWTH_MB);
    if (lifecycles[0] == 0 || (have_onnx && lifecycles[1] == 0)) problem("no lifecycle completed on a plugin");
    if (problems) {
        printf("lifecycle_stress: FAIL (%lu problems%s)\n", problems, problems > MAX_REPORTS ? ", the first ones printed" : "");
        return 1;
    }
    printf("lifecycle_stress: PASS\n");
    return 0;
}
