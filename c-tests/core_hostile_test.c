/* Issue #12, "trust no plugin, no caller, no thread": libmlos_core.so against hostile plugins
 * (c-tests/plugins/hostile_plugin.c), hostile callers and hostile thread patterns.
 *
 * Every item runs in a child process forked before libmlos_core.so is loaded, under a watchdog
 * (alarm): a core that crashes or deadlocks fails that item, said as such, and the others still
 * run. The parent loads nothing and prints a summary.
 *
 * usage: core_hostile_test <build-dir> <hostile-plugin-dir> <onnx-models-dir>
 *                          [--only NAME[,NAME...]] [--duration-ms N] [--no-fork]
 *   build-dir: libmlos_core.so and plugins/ (echo, ONNX); hostile-plugin-dir: the two hostile
 *   builds; --duration-ms: of each use-after-unregister race (default 3000); --no-fork: run the
 *   items in this process (debuggers), stopping at the first hang or crash. */
#define _GNU_SOURCE
#include <ftw.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hostile_items.h"

typedef struct {
    const char* name;
    void (*run)(void);
    int timeout_s;
} item_t;

static const item_t items[] = {
    {"use_after_unregister", item_use_after_unregister, 30},
    {"use_after_unregister_serial", item_use_after_unregister_serial, 30},
    {"lying_num_outputs_batched", item_lying_num_outputs_batched, 15},
    {"lying_num_outputs", item_lying_num_outputs, 15},
    {"lying_output_size", item_lying_output_size, 15},
    {"lying_model_io", item_lying_model_io, 15},
    {"bad_typed_outputs", item_bad_typed_outputs, 15},
    {"unload_starvation", item_unload_starvation, 45},
    {"bytes_ids", item_bytes_ids, 15},
    {"bytes_plugin_path", item_bytes_plugin_path, 15},
    {"bytes_model_path", item_bytes_model_path, 15},
    {"last_error_threads", item_last_error_threads, 60},
    {"status_out_of_range", item_status_out_of_range, 15},
    {"release_twice", item_release_twice, 15},
    {"reentry_serial_sibling", item_reentry_serial_sibling, 10},
    {"reentry_serial_unload", item_reentry_serial_unload, 10},
    {"reentry_thread_safe_sibling", item_reentry_thread_safe_sibling, 10},
    {"reentry_thread_safe_unload", item_reentry_thread_safe_unload, 10},
    {"no_registry_lock", item_no_registry_lock, 15},
    {"plugin_path_checks", item_plugin_path_checks, 15},
    {"shape_overflow", item_shape_overflow, 20},
    {"onnx_info_unloaded", item_onnx_info_unloaded, 20},
    {"echo_direct", item_echo_direct, 15},
    {"unload_timeout", item_unload_timeout, 30},
    {"unload_timeout_serial", item_unload_timeout_serial, 30},
    {"inference_deadline", item_inference_deadline, 30},
    {"gate_deadline", item_gate_deadline, 30},
};
#define NUM_ITEMS (sizeof items / sizeof items[0])

enum { RESULT_PASS, RESULT_FAIL, RESULT_HANG, RESULT_CRASH, RESULT_SKIP };
static const char* const result_names[] = {"PASS", "FAIL", "HANG", "CRASH", "SKIP"};
#define EXIT_WATCHDOG 3

static void on_alarm(int signal) {
    const char* what = current_phase();
    (void)signal;
    (void)!write(2, "WATCHDOG: no progress in phase: ", 32);
    (void)!write(2, what, strlen(what));
    (void)!write(2, "\n", 1);
    _exit(EXIT_WATCHDOG);
}

static int run_here(const item_t* item) {
    signal(SIGALRM, on_alarm);
    alarm((unsigned)item->timeout_s);
    phase("loading libmlos_core.so");
    mlos_api_load(&api, env.build_dir);
    phase(item->name);
    item->run();
    alarm(0);
    return mlos_test_failures ? 1 : 0;
}

/* Waits for the child, killing it a little after its own watchdog should have fired. */
static int wait_child(pid_t pid, int timeout_s, int* status) {
    double until = now_ms() + (timeout_s + 5) * 1000.0;
    while (now_ms() < until) {
        if (waitpid(pid, status, WNOHANG) == pid) return 1;
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, status, 0);
    return 0;
}

static int run_forked(const item_t* item, char* detail, size_t size) {
    int status = 0;
    pid_t pid = fork();
    if (pid == 0) _exit(run_here(item));
    if (pid < 0 || !wait_child(pid, item->timeout_s, &status)) {
        snprintf(detail, size, pid < 0 ? "fork failed" : "killed after %d s", item->timeout_s + 5);
        return RESULT_HANG;
    }
    if (WIFSIGNALED(status)) {
        snprintf(detail, size, "signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
        return RESULT_CRASH;
    }
    snprintf(detail, size, "exit %d", WEXITSTATUS(status));
    if (WEXITSTATUS(status) == EXIT_WATCHDOG) return RESULT_HANG;
    return WEXITSTATUS(status) == 0 ? RESULT_PASS : RESULT_FAIL;
}

static int selected(const char* only, const char* name) {
    const char* p = only;
    size_t n = strlen(name);
    if (only == NULL) return 1;
    while ((p = strstr(p, name)) != NULL) {
        if ((p == only || p[-1] == ',') && (p[n] == ',' || p[n] == '\0')) return 1;
        p += n;
    }
    return 0;
}

static int remove_entry(const char* path, const struct stat* st, int flag, struct FTW* ftw) {
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

static int parse_args(int argc, char** argv, const char** only, int* no_fork) {
    int i;
    if (argc < 4) return 0;
    env.build_dir = argv[1];
    env.fixture_dir = argv[2];
    env.onnx_dir = argv[3];
    env.duration_ms = 3000;
    for (i = 4; i < argc; i++) {
        if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) *only = argv[++i];
        else if (strcmp(argv[i], "--duration-ms") == 0 && i + 1 < argc) env.duration_ms = atoi(argv[++i]);
        else if (strcmp(argv[i], "--no-fork") == 0) *no_fork = 1;
        else return 0;
    }
    return 1;
}

int main(int argc, char** argv) {
    const char* only = NULL;
    int no_fork = 0, results[NUM_ITEMS], counts[5] = {0};
    char details[NUM_ITEMS][128];
    size_t i;
    if (!parse_args(argc, argv, &only, &no_fork)) {
        fprintf(stderr, "usage: %s <build-dir> <hostile-plugin-dir> <onnx-models-dir> [--only A,B] [--duration-ms N] [--no-fork]\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0); /* children leave with _exit: nothing may wait in a buffer */
    snprintf(env.temp_dir, sizeof env.temp_dir, "/tmp/mlos-hostile-XXXXXX");
    if (mkdtemp(env.temp_dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    for (i = 0; i < NUM_ITEMS; i++) {
        details[i][0] = '\0';
        if (!selected(only, items[i].name)) {
            results[i] = RESULT_SKIP;
            continue;
        }
        printf("=== %s\n", items[i].name);
        results[i] = no_fork ? (run_here(&items[i]) ? RESULT_FAIL : RESULT_PASS)
                             : run_forked(&items[i], details[i], sizeof details[i]);
        printf("--- %s: %s %s\n", items[i].name, result_names[results[i]], details[i]);
        counts[results[i]]++;
    }
    nftw(env.temp_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    printf("\ncore_hostile_test summary:\n");
    for (i = 0; i < NUM_ITEMS; i++)
        if (results[i] != RESULT_SKIP) printf("  %-30s %s %s\n", items[i].name, result_names[results[i]], details[i]);
    printf("%d passed, %d failed, %d hung, %d crashed\n", counts[RESULT_PASS], counts[RESULT_FAIL], counts[RESULT_HANG],
           counts[RESULT_CRASH]);
    if (counts[RESULT_FAIL] + counts[RESULT_HANG] + counts[RESULT_CRASH]) return 1;
    return counts[RESULT_PASS] ? 0 : 2; /* --only named nothing */
}
