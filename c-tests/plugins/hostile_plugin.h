/* What the hostile fixture plugin (hostile_plugin.c) exports besides smi_plugin_init, for
 * core_hostile_test.c to read what the core did to it. The test finds these with dlsym on the
 * handle of the same .so path the core loaded: dlopen hands back the one library, so the test
 * reads the counters the core's calls moved. */
#ifndef MLOS_HOSTILE_PLUGIN_H
#define MLOS_HOSTILE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "mlos/mlos_core.h"

#define HOSTILE_PATH_MAX 512

/** Counters since the library was loaded (each test item runs in a process of its own). */
typedef struct {
    long dead_calls;      /* entries called on a handle that was never registered or is unregistered */
    long overlaps;        /* entries running on a handle while its unregister_model ran */
    long registered;      /* register_model successes */
    long live;            /* handles registered now */
    long inference_calls; /* untyped inference entries that reached a live model */
    long infer_calls;     /* typed infer entries that reached a live model */
    long allocs;          /* outputs the plugin allocated (with release set) */
    long releases;        /* first release of such an output */
    long double_releases; /* release called again on an output already released */
    long bad_releases;    /* release called on a tensor the plugin never gave out */
    long unloaded_calls;  /* inference/infer on a live model the plugin has not loaded (or has unloaded) */
    long hung;            /* requests waiting in a hang now */
    long registering;     /* register_model calls sleeping now */
    long initializes;     /* initialize calls */
    char last_register_path[HOSTILE_PATH_MAX]; /* metadata->path of the last register_model, bytes as given */
    char last_load_path[HOSTILE_PATH_MAX];     /* path of the last load_model ("(null)" when NULL) */
} hostile_stats_t;

/** The host API a re-entrant model calls back into (resolved by the test from libmlos_core.so). */
typedef struct {
    mlos_core_t* core;
    __typeof__(&mlos_core_inference) inference;
    __typeof__(&mlos_core_unload_model) unload_model;
    __typeof__(&mlos_core_last_error) last_error;
} hostile_host_t;

typedef void (*hostile_stats_fn)(hostile_stats_t* out);
typedef void (*hostile_release_hang_fn)(void);
typedef void (*hostile_set_host_fn)(const hostile_host_t* host);

#endif
