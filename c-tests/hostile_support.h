/* Shared by core_hostile_test.c and its item files: where things are, the hostile plugin's
 * hooks, a watchdog phase, clocks and small builders. Every item runs in a child process of
 * its own (see core_hostile_test.c), so an item may hang or crash without taking the others. */
#ifndef MLOS_HOSTILE_SUPPORT_H
#define MLOS_HOSTILE_SUPPORT_H

#include <pthread.h>
#include <stdint.h>

#include "plugins/hostile_plugin.h"
#include "test_support.h"

typedef struct {
    const char* build_dir;   /* libmlos_core.so and plugins/ (echo, ONNX) */
    const char* fixture_dir; /* libmlos_hostile_plugin.so, libmlos_hostile_serial_plugin.so */
    const char* onnx_dir;    /* mlp.onnx */
    char temp_dir[256];      /* scratch for this run (FIFOs, copies), removed at the end */
    int duration_ms;         /* of the race in the use-after-unregister items */
} hostile_env_t;

extern hostile_env_t env;
extern mlos_api_t api; /* loaded by the child before an item runs */

/** What the watchdog prints when an item runs out of time: set it before any call that may hang. */
void phase(const char* what);
const char* current_phase(void);

double now_ms(void);
void sleep_ms(int ms);

/** The test's own handle on a hostile plugin library (the one the core loaded from the same path). */
typedef struct {
    void* library;
    hostile_stats_fn stats;
    hostile_release_hang_fn release_hang;
    hostile_set_host_fn set_host;
} hostile_lib_t;

const char* hostile_path(int serial);
const char* echo_path(void);
const char* onnx_plugin_path(void);
void hostile_open(hostile_lib_t* lib, const char* path);
hostile_stats_t hostile_read(const hostile_lib_t* lib);
/** Points the plugin's re-entrant models at this core through the host API. */
void hostile_give_host(const hostile_lib_t* lib, mlos_core_t* core);

/** A core with the hostile plugin (serial: the non-thread-safe build) loaded and lib opened. */
mlos_core_t* core_with_hostile(int serial, hostile_lib_t* lib);
/** Registers a model whose options' "config" is the plugin keywords; batching adds dynamic batching. */
mlos_status_t register_hostile(mlos_core_t* core, const char* id, const char* plugin_id, const char* keywords, int batching);
/** register_hostile, then load, both expected to succeed. */
void add_hostile(mlos_core_t* core, const char* id, const char* plugin_id, const char* keywords, int batching);

/** An FP32 tensor [d0, d1] over data. */
smi_tensor_t fp32_tensor(const char* name, float* data, int64_t d0, int64_t d1);

/** Whether status is one of the count statuses in list. */
int status_in(int status, const int* list, size_t count);

/** Polls until *value (read with the plugin's stats) reaches want, or timeout_ms passes; 1 when it did. */
int wait_for_stat(const hostile_lib_t* lib, size_t offset, long want, int timeout_ms);
#define WAIT_FOR_STAT(lib, field, want, timeout_ms) \
    wait_for_stat(lib, offsetof(hostile_stats_t, field), want, timeout_ms)

/** Prints an item's result line for a sub-check (timing and counters worth seeing in the log). */
#define NOTE(...)                  \
    do {                           \
        printf("    ");            \
        printf(__VA_ARGS__);       \
        printf("\n");              \
    } while (0)

#endif
