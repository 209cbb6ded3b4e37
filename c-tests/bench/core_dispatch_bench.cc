// C API dispatch cost: one untyped inference through libmlos_core.so versus calling the same
// plugin's inference function pointer directly, for the guide's C echo plugin and the C# echo
// plugin, at 64 B and 64 KiB. Prints each pair's ratio (measured in this run).
//
// The guide's plugin printf()s on every call; stdout goes to /dev/null while measuring, so
// both sides pay that same cost. The C# echo plugin has no such cost and shows the core's
// overhead more sharply.
#include <benchmark/benchmark.h>
#include <dlfcn.h>

#include <unistd.h>

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
    smi_plugin_t* plugin = nullptr;
    smi_model_handle_t handle = nullptr;
};

Target g_guide{"guide-echo", "c-tests/plugins/libmlos_guide_plugin.so"};
Target g_csharp{"csharp-echo", "plugins/libmlos_echo_plugin.so"};

void Setup(Target& t, const char* plugin_id) {
    std::string path = g_build + "/" + t.plugin_path;
    if (g_api.load_plugin(g_core, path.c_str(), nullptr, "bench") != SMI_SUCCESS ||
        g_api.register_model(g_core, t.model, plugin_id, nullptr, nullptr) != SMI_SUCCESS ||
        g_api.load_model(g_core, t.model) != SMI_SUCCESS) {
        std::fprintf(stderr, "setup of %s failed: %s\n", t.model, g_api.last_error());
        std::exit(2);
    }
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
    Setup(g_guide, "my-ml-plugin");
    Setup(g_csharp, "csharp-echo");

    for (Target* t : {&g_guide, &g_csharp}) {
        std::string name = t->model;
        benchmark::RegisterBenchmark((name + "/direct").c_str(), Direct, t)->Arg(64)->Arg(64 << 10);
        benchmark::RegisterBenchmark((name + "/core").c_str(), ThroughCore, t)->Arg(64)->Arg(64 << 10);
    }
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
    for (Target* t : {&g_guide, &g_csharp}) {
        for (const char* size : {"64", "65536"}) {
            std::string name = t->model;
            double direct = reporter.ns[name + "/direct/" + size], core = reporter.ns[name + "/core/" + size];
            std::printf("%-14s %10s %12.1f %12.1f %7.2fx\n", t->model, size, direct, core, direct > 0 ? core / direct : 0.0);
        }
    }
    g_api.destroy(g_core);
    return 0;
}
