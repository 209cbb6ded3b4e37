/* Shared by the C tests and the benchmark: libmlos_core.so loaded with dlopen, as a C host
 * would, and small assertion macros that print the core's last error. */
#ifndef MLOS_TEST_SUPPORT_H
#define MLOS_TEST_SUPPORT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlos/mlos_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The host API, resolved with dlsym. */
typedef struct {
    void* library;
    __typeof__(&mlos_core_version) version;
    __typeof__(&mlos_core_smi_version) smi_version;
    __typeof__(&mlos_core_last_error) last_error;
    __typeof__(&mlos_core_create) create;
    __typeof__(&mlos_core_destroy) destroy;
    __typeof__(&mlos_core_load_plugin) load_plugin;
    __typeof__(&mlos_core_load_plugin_with_options) load_plugin_with_options;
    __typeof__(&mlos_core_list_plugins) list_plugins;
    __typeof__(&mlos_core_list_models) list_models;
    __typeof__(&mlos_core_model_info) model_info;
    __typeof__(&mlos_core_register_model) register_model;
    __typeof__(&mlos_core_load_model) load_model;
    __typeof__(&mlos_core_unload_model) unload_model;
    __typeof__(&mlos_core_unregister_model) unregister_model;
    __typeof__(&mlos_core_allocate_resources) allocate_resources;
    __typeof__(&mlos_core_deallocate_resources) deallocate_resources;
    __typeof__(&mlos_core_inference) inference;
    __typeof__(&mlos_core_infer) infer;
    __typeof__(&mlos_core_infer_selected) infer_selected;
    __typeof__(&mlos_core_release_outputs) release_outputs;
    __typeof__(&mlos_core_smi_layout) smi_layout;
} mlos_api_t;

/** Loads <build_dir>/libmlos_core.so and every entry; exits with a message on failure. */
void mlos_api_load(mlos_api_t* api, const char* build_dir);

/** "<build_dir>/<relative>" in a static buffer of the caller's. */
const char* mlos_path(char* buffer, size_t size, const char* build_dir, const char* relative);

/** dlopens a plugin and returns its descriptor from smi_plugin_init; exits with a message on failure. */
smi_plugin_t* mlos_open_plugin(const char* path);

/** Resident set size of this process in bytes (/proc/self/statm), 0 if unreadable. */
long mlos_rss_bytes(void);

extern int mlos_test_failures;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);    \
            fprintf(stderr, __VA_ARGS__);                                       \
            fprintf(stderr, "\n");                                              \
            mlos_test_failures++;                                               \
        }                                                                       \
    } while (0)

/** Expects `expr` to return `status` and, when `needle` is not NULL, a last error containing it. */
#define EXPECT_STATUS(api, expr, status, needle)                                           \
    do {                                                                                   \
        int got_ = (int)(expr);                                                            \
        const char* err_ = (api)->last_error();                                            \
        CHECK(got_ == (int)(status), "got %d, want %d (%s); last error: %s", got_,          \
              (int)(status), #status, err_ ? err_ : "(none)");                             \
        if ((needle) != NULL && got_ != 0)                                                 \
            CHECK(err_ != NULL && strstr(err_, (needle)) != NULL,                          \
                  "last error \"%s\" lacks \"%s\"", err_ ? err_ : "(none)", (const char*)(needle)); \
    } while (0)

#define EXPECT_OK(api, expr) EXPECT_STATUS(api, expr, SMI_SUCCESS, (const char*)NULL)

/** Like EXPECT_STATUS for a call straight into a plugin, with the plugin's own last error (SMI 1.1). */
#define EXPECT_PLUGIN_STATUS(plugin, expr, status, needle)                                   \
    do {                                                                                     \
        int got_ = (int)(expr);                                                              \
        const char* err_ = (plugin)->v1_1.get_last_error();                                  \
        CHECK(got_ == (int)(status), "got %d, want %d; last error: %s", got_, (int)(status), \
              err_ ? err_ : "(none)");                                                       \
        if ((needle) != NULL && got_ != 0)                                                   \
            CHECK(err_ != NULL && strstr(err_, (needle)) != NULL, "last error \"%s\" lacks \"%s\"", \
                  err_ ? err_ : "(none)", (const char*)(needle));                            \
    } while (0)

#ifdef __cplusplus
}
#endif

#endif
