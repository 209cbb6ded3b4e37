// C API dispatch cost: one untyped inference through libmlos_core.so versus calling the same
// plugin's inference function pointer directly, for echo plugins in four languages (the guide's
// C plugin, C# on the SDK, Go c-shared, a Python class behind the Python bridge), at 64 B and
// 64 KiB. Prints each pair's ratio, and each language's cost through the core as a ratio to the
// guide's C echo through the same core (all measured in this run).
//
// Then the cost of isolation (#16): the C# echo plugin loaded a second time with "isolation":
// "process" (a mlos_plugin_host of its own), through the same core, at 64 B, 64 KiB and 4 MiB:
// the time it adds per call against the same plugin in process.
//
// The guide's plugin printf()s on every call; stdout goes to /dev/null while measuring, so
// both sides pay that same cost. The C# echo plugin has no such cost and shows the core's
// overhead more sharply.
#include <benchmark/benchmark.h>
#include <dlfcn.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "test_support.h"

namespace {

mlos_api_t g_api;
mlos_core_t* g_core = nullptr;
std::string g_build;

struct Target {
    const char* model;        // model id in the core
    const char* plugin_path;  // relative to the build dir
    const char* plugin_id;
    std::string config = "bench";
    const char* options = nullptr;  // load options ({"isolation":"process"}): no direct baseline then
    smi_plugin_t* plugin = nullptr;
    smi_model_handle_t handle = nullptr;
};

Target g_guide{"guide-echo", "c-tests/plugins/libmlos_guide_plugin.so", "my-ml-plugin"};
Target g_csharp{"csharp-echo", "plugins/libmlos_echo_plugin.so", "csharp-echo"};
Target g_go{"go-echo", "c-tests/plugins/libmlos_go_plugin.so", "go-example"};
// The sample class's echo model: `return input_data, 0` (c-tests/python/my_python_plugin.py).
Target g_python{"python-echo", "plugins/libmlos_python_plugin.so", "python-bridge",
                "{\"module\": \"my_python_plugin\", \"class\": \"MyPythonPlugin\", \"path\": \"" MLOS_SOURCE_DIR "/c-tests/python\"}"};
std::vector<Target*> g_targets{&g_guide, &g_csharp, &g_go, &g_python};
Target g_isolated{"csharp-echo-isolated", "plugins/libmlos_echo_plugin.so", "csharp-echo-isolated", "bench", "{\"isolation\":\"process\"}"};

void Setup(Target& t) {
    std::string path = g_build + "/" + t.plugin_path;
    const char* plugin_id = t.plugin_id;
    // The dispatch rows measure the core in process: said explicitly, since the default isolation
    // would put the guide, Go and Python plugins in host processes of their own.
    int loaded = g_api.load_plugin_with_options(g_core, path.c_str(), t.options ? plugin_id : nullptr, t.config.c_str(),
                                                t.options ? t.options : "{\"isolation\":\"none\"}");
    if (loaded != SMI_SUCCESS ||
        g_api.register_model(g_core, t.model, plugin_id, nullptr, nullptr) != SMI_SUCCESS ||
        g_api.load_model(g_core, t.model) != SMI_SUCCESS) {
        std::fprintf(stderr, "setup of %s failed: %s\n", t.model, g_api.last_error());
        std::exit(2);
    }
    if (t.options) return; // in another process: nothing to call directly
    // The direct baseline: the same library (dlopen returns the core's handle) and its own
    // model handle, registered and loaded the way the core does it.
    void* lib = dlopen(path.c_str(), RTLD_NOW);
    auto init = reinterpret_cast<smi_plugin_init_func_t>(dlsym(lib, "smi_plugin_init"));
    t.plugin = init();
    smi_model_metadata_t md{};
    md.name = "direct";
    t.plugin->interface.register_model(&md, &t.handle);
    if (t.plugin->interface.load_model) t.plugin->interface.load_model(t.handle, nullptr);
}

void Direct(benchmark::State& state, Target* t) {
    std::vector<char> in(state.range(0), 'x'), out(state.range(0));
    for (auto _ : state) {
        size_t size = out.size();
        if (t->plugin->interface.inference(t->handle, in.data(), in.size(), out.data(), &size) != SMI_SUCCESS)
            state.SkipWithError("direct inference failed");
        benchmark::DoNotOptimize(size);
    }
    state.SetBytesProcessed(state.iterations() * state.range(0));
}

void ThroughCore(benchmark::State& state, Target* t) {
    std::vector<char> in(state.range(0), 'x'), out(state.range(0));
    for (auto _ : state) {
        size_t size = out.size();
        if (g_api.inference(g_core, t->model, in.data(), in.size(), out.data(), &size) != SMI_SUCCESS)
            state.SkipWithError(g_api.last_error());
        benchmark::DoNotOptimize(size);
    }
    state.SetBytesProcessed(state.iterations() * state.range(0));
}

// Keeps each run's time per iteration so that ratios can be printed at the end.
class RatioReporter : public benchmark::ConsoleReporter {
public:
    std::map<std::string, double> ns;
    void ReportRuns(const std::vector<Run>& runs) override {
        for (const auto& r : runs) ns[r.benchmark_name()] = r.GetAdjustedRealTime();
        ConsoleReporter::ReportRuns(runs);
    }
};

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s <build-dir> [benchmark flags]\n", argv[0]);
        return 2;
    }
    g_build = argv[1];
    mlos_api_load(&g_api, argv[1]);
    if (g_api.create(nullptr, &g_core) != SMI_SUCCESS) return 2;
    std::fflush(stdout);
    int saved_stdout = dup(fileno(stdout));
    if (!std::freopen("/dev/null", "w", stdout)) return 2;
    // The Go plugin is built only where a Go toolchain is: measure what is there.
    auto missing = [](Target* t) {
        bool absent = access((g_build + "/" + t->plugin_path).c_str(), R_OK) != 0;
        if (absent) std::fprintf(stderr, "skipping %s: %s/%s is not built\n", t->model, g_build.c_str(), t->plugin_path);
        return absent;
    };
    g_targets.erase(std::remove_if(g_targets.begin(), g_targets.end(), missing), g_targets.end());
    for (Target* t : g_targets) Setup(*t);
    bool isolation = !missing(&g_isolated) && access((g_build + "/mlos_plugin_host").c_str(), X_OK) == 0;
    if (isolation) Setup(g_isolated);

    for (Target* t : g_targets) {
        std::string name = t->model;
        benchmark::RegisterBenchmark((name + "/direct").c_str(), Direct, t)->Arg(64)->Arg(64 << 10);
        benchmark::RegisterBenchmark((name + "/core").c_str(), ThroughCore, t)->Arg(64)->Arg(64 << 10);
    }
    if (isolation)
        for (Target* t : {&g_csharp, &g_isolated})
            benchmark::RegisterBenchmark((std::string(t->model) + "/sizes").c_str(), ThroughCore, t)->Arg(64)->Arg(64 << 10)->Arg(4 << 20);
    argc--;
    argv++;
    benchmark::Initialize(&argc, argv);
    RatioReporter reporter;
    // Report on stderr: stdout is /dev/null while the guide plugin prints.
    reporter.SetOutputStream(&std::cerr);
    reporter.SetErrorStream(&std::cerr);
    benchmark::RunSpecifiedBenchmarks(&reporter);

    std::fflush(stdout);
    dup2(saved_stdout, fileno(stdout));
    std::printf("\nC API dispatch: time through libmlos_core.so / direct function-pointer call\n");
    std::printf("%-14s %10s %12s %12s %8s\n", "plugin", "payload", "direct ns", "core ns", "ratio");
    for (Target* t : g_targets) {
        for (const char* size : {"64", "65536"}) {
            std::string name = t->model;
            double direct = reporter.ns[name + "/direct/" + size], core = reporter.ns[name + "/core/" + size];
            std::printf("%-14s %10s %12.1f %12.1f %7.2fx\n", t->model, size, direct, core, direct > 0 ? core / direct : 0.0);
        }
    }
    // Machine-readable lines for tests/bench/run.sh (tab-separated; see its header).
    for (Target* t : g_targets) {
        for (const char* size : {"64", "65536"}) {
            std::string name = t->model;
            double direct = reporter.ns[name + "/direct/" + size], core = reporter.ns[name + "/core/" + size];
            bool goal = t == &g_guide && std::string(size) == "64";
            std::printf("RATIO\tC API dispatch (core / direct call)\t%s, %s B\t%.1f ns\t%.1f ns\t%.3f\t%s\n", t->model, size, core,
                        direct, direct > 0 ? core / direct : 0.0, goal ? "<= 1.5" : "");
        }
    }
    for (Target* t : g_targets) {
        if (t == &g_guide) continue;
        double own = reporter.ns[std::string(t->model) + "/core/64"], c = reporter.ns[std::string(g_guide.model) + "/core/64"];
        std::printf("RATIO\tPlugin language (echo 64 B via core / C echo via core)\t%s\t%.1f ns\t%.1f ns\t%.3f\t\n", t->model, own, c,
                    c > 0 ? own / c : 0.0);
    }
    if (isolation) {
        std::printf("\nIsolation: the C# echo plugin in a host process vs in process, through the same core\n");
        std::printf("%10s %14s %14s %12s\n", "payload", "in process ns", "isolated ns", "added us");
        for (const char* size : {"64", "65536", "4194304"}) {
            double in = reporter.ns["csharp-echo/sizes/" + std::string(size)], iso = reporter.ns["csharp-echo-isolated/sizes/" + std::string(size)];
            std::printf("%10s %14.1f %14.1f %12.2f\n", size, in, iso, (iso - in) / 1000);
            if (std::string(size) == "64")
                std::printf("RATIO\tIsolation cost (added per call / 15 us limit)\tC# echo via C API, 64 B\t%.2f us added\t15 us (limit)\t%.3f\t<= 1\n",
                            (iso - in) / 1000, (iso - in) / 15000);
            std::printf("RATIO\tIsolation (isolated / in process, echo via C API)\tC# echo, %s B\t%.1f ns\t%.1f ns\t%.3f\t\n", size, iso, in,
                        in > 0 ? iso / in : 0.0);
        }
    }
    std::printf("\nPer-call cost by plugin language, through the same core, as a ratio to the guide's C echo\n");
    std::printf("%-14s %10s %12s %14s\n", "plugin", "payload", "core ns", "vs C echo");
    for (Target* t : g_targets) {
        for (const char* size : {"64", "65536"}) {
            double own = reporter.ns[std::string(t->model) + "/core/" + size];
            double c = reporter.ns[std::string(g_guide.model) + "/core/" + size];
            std::printf("%-14s %10s %12.1f %13.2fx\n", t->model, size, own, c > 0 ? own / c : 0.0);
        }
    }
    g_api.destroy(g_core);
    return 0;
}
