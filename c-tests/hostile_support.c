#define _GNU_SOURCE
#include "hostile_support.h"

#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <time.h>

hostile_env_t env;
mlos_api_t api;

static const char* volatile g_phase = "starting";

void phase(const char* what) { g_phase = what; }
const char* current_phase(void) { return g_phase; }

double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static const char* join(char* buffer, size_t size, const char* dir, const char* name) {
    snprintf(buffer, size, "%s/%s", dir, name);
    return buffer;
}

const char* hostile_path(int serial) {
    static char paths[2][4096];
    return join(paths[serial != 0], sizeof paths[0], env.fixture_dir,
                serial ? "libmlos_hostile_serial_plugin.so" : "libmlos_hostile_plugin.so");
}

const char* echo_path(void) {
    static char path[4096];
    return join(path, sizeof path, env.build_dir, "plugins/libmlos_echo_plugin.so");
}

const char* onnx_plugin_path(void) {
    static char path[4096];
    return join(path, sizeof path, env.build_dir, "plugins/libmlos_onnx_plugin.so");
}

#define RESOLVE(lib, field, symbol)                                                    \
    do {                                                                               \
        *(void**)&(lib)->field = dlsym((lib)->library, symbol);                        \
        if ((lib)->field == NULL) {                                                    \
            fprintf(stderr, "hostile plugin lacks %s: %s\n", symbol, dlerror());       \
            exit(2);                                                                   \
        }                                                                              \
    } while (0)

void hostile_open(hostile_lib_t* lib, const char* path) {
    lib->library = dlopen(path, RTLD_NOW);
    if (lib->library == NULL) {
        fprintf(stderr, "cannot open %s: %s\n", path, dlerror());
        exit(2);
    }
    RESOLVE(lib, stats, "hostile_stats");
    RESOLVE(lib, release_hang, "hostile_release_hang");
    RESOLVE(lib, set_host, "hostile_set_host");
}

hostile_stats_t hostile_read(const hostile_lib_t* lib) {
    hostile_stats_t s;
    lib->stats(&s);
    return s;
}

void hostile_give_host(const hostile_lib_t* lib, mlos_core_t* core) {
    hostile_host_t host;
    host.core = core;
    host.inference = api.inference;
    host.unload_model = api.unload_model;
    host.last_error = api.last_error;
    lib->set_host(&host);
}

mlos_core_t* core_with_hostile(int serial, hostile_lib_t* lib) {
    mlos_core_t* core = NULL;
    EXPECT_OK(&api, api.create(NULL, &core));
    if (core == NULL) exit(1);
    EXPECT_OK(&api, api.load_plugin(core, hostile_path(serial), NULL, NULL));
    hostile_open(lib, hostile_path(serial));
    return core;
}

mlos_status_t register_hostile(mlos_core_t* core, const char* id, const char* plugin_id, const char* keywords, int batching) {
    char options[1024];
    snprintf(options, sizeof options, "{\"config\":\"%s\"%s}", keywords ? keywords : "",
             batching ? ",\"dynamic_batching\":{\"max_batch_size\":8,\"max_queue_delay_us\":0}" : "");
    return api.register_model(core, id, plugin_id, NULL, options);
}

void add_hostile(mlos_core_t* core, const char* id, const char* plugin_id, const char* keywords, int batching) {
    EXPECT_OK(&api, register_hostile(core, id, plugin_id, keywords, batching));
    EXPECT_OK(&api, api.load_model(core, id));
}

smi_tensor_t fp32_tensor(const char* name, float* data, int64_t d0, int64_t d1) {
    smi_tensor_t t;
    memset(&t, 0, sizeof t);
    t.name = name;
    t.dtype = SMI_DTYPE_FP32;
    t.ndim = 2;
    t.shape[0] = d0;
    t.shape[1] = d1;
    t.data = data;
    t.byte_size = (size_t)(d0 * d1) * sizeof(float);
    return t;
}

int status_in(int status, const int* list, size_t count) {
    size_t i;
    for (i = 0; i < count; i++)
        if (list[i] == status) return 1;
    return 0;
}

int wait_for_stat(const hostile_lib_t* lib, size_t offset, long want, int timeout_ms) {
    double until = now_ms() + timeout_ms;
    do {
        hostile_stats_t s = hostile_read(lib);
        if (*(const long*)((const char*)&s + offset) >= want) return 1;
        sleep_ms(2);
    } while (now_ms() < until);
    return 0;
}
