using System.Diagnostics;

namespace Mlos.Benchmarks.Server;

/// <summary>
/// The README's demo command as the CMake target <c>run</c> starts it (in the build folder,
/// <c>--model-root tests/models --model demo-mlp=onnx/mlp.onnx</c>; here on a free port instead
/// of 8080): start-up and idle memory, the same with one Torch model against what libtorch
/// itself costs, and the threads of a server holding 1000 ONNX models.
/// </summary>
internal static class Startup
{
    private const int Starts = 5;

    /// <summary>Section "startup".</summary>
    public static async Task Demo(string build, string repo)
    {
        var models = Path.Combine(repo, "tests", "models");
        var onnx = await Median(build, ["--model-root", models, "--model", "demo-mlp=onnx/mlp.onnx"]);
        const double StartGoalMs = 120, RssGoalMb = 80;
        Report.Fact("Start-up", $"README demo (one ONNX model, demo-mlp=onnx/mlp.onnx): start to /v2/health/ready, median of {Starts} starts (goal <= {StartGoalMs} ms)", $"{onnx.Ms:F0} ms");
        Report.Fact("Start-up", $"README demo: idle RSS 1 s after ready, median of {Starts} (goal <= {RssGoalMb} MB)", $"{onnx.RssMb:F1} MB");
        Report.Fact("Start-up", $"README demo: threads 1 s after ready, median of {Starts}", $"{onnx.Threads}");
        Report.Ratio("Start-up (README demo / goal)", "one ONNX model: start to /v2/health/ready", $"{onnx.Ms:F0} ms", $"goal {StartGoalMs} ms", onnx.Ms / StartGoalMs, "<= 1");
        Report.Ratio("Start-up (README demo / goal)", "one ONNX model: idle RSS", $"{onnx.RssMb:F1} MB", $"goal {RssGoalMb} MB", onnx.RssMb / RssGoalMb, "<= 1");

        var torch = await Median(build, ["--model-root", models, "--model", "demo-torch=torch/mlp.pt"]);
        var (libtorchMb, libs) = LibtorchCost(build);
        double limit = libtorchMb + 30;
        Report.Fact("Start-up", $"one Torch model (demo-torch=torch/mlp.pt): start to /v2/health/ready, median of {Starts} starts", $"{torch.Ms:F0} ms");
        Report.Fact("Start-up", $"libtorch itself: RSS increase of a bare process dlopening {libs}", $"{libtorchMb:F1} MB");
        Report.Fact("Start-up", $"one Torch model: idle RSS 1 s after ready, median of {Starts} (goal <= libtorch itself + 30 MB = {limit:F1} MB)", $"{torch.RssMb:F1} MB");
        Report.Ratio("Start-up (one Torch model / (libtorch itself + 30 MB))", "one Torch model: idle RSS", $"{torch.RssMb:F1} MB",
            $"libtorch {libtorchMb:F1} MB + 30 MB", torch.RssMb / limit, "<= 1");
    }

    /// <summary>Section "threads": the demo plus 1000 copies of the MLP fixture, registered with no options, each asked once.</summary>
    public static async Task ThousandModels(string build, string repo, Bodies bodies)
    {
        const int Count = 1000;
        using var server = await MlosServer.StartAsync(build, ["--model-root", Path.Combine(repo, "tests", "models"), "--model", "demo-mlp=onnx/mlp.onnx"]);
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < Count; i++)
            await server.Register($"m{i}", $$"""{"model_id":"m{{i}}","path":"onnx/mlp.onnx"}""");
        var registered = clock.Elapsed;
        var body = File.ReadAllBytes(bodies.Json("mlp", "input", 16));
        for (int i = 0; i < Count; i++)
        {
            using var r = await server.Http.PostAsync($"/v2/models/m{i}/infer", new ByteArrayContent(body) { Headers = { { "Content-Type", "application/json" } } });
            if (!r.IsSuccessStatusCode) throw new InvalidOperationException($"m{i}: {await r.Content.ReadAsStringAsync()}");
        }
        await Task.Delay(1000);
        int threads = server.Threads, limit = 2 * Environment.ProcessorCount + 20;
        Report.Fact("Threads", $"registering and loading {Count} ONNX models (onnx/mlp.onnx, no options), one at a time", $"{registered.TotalSeconds:F1} s");
        Report.Fact("Threads", $"idle RSS with {Count + 1} ONNX models, each asked once", $"{server.RssMb:F0} MB");
        Report.Fact("Threads", $"threads with {Count + 1} ONNX models, each asked once, 1 s later (goal <= 2 x {Environment.ProcessorCount} cores + 20 = {limit})", $"{threads}");
        Report.Ratio("Threads (measured / limit)", $"{Count + 1} ONNX models (MLP fixture), default registration", $"{threads} threads",
            $"limit 2 x {Environment.ProcessorCount} cores + 20 = {limit}", threads / (double)limit, "<= 1");
    }

    private static async Task<(double Ms, double RssMb, int Threads)> Median(string build, string[] args)
    {
        var runs = new List<(double Ms, double RssMb, int Threads)>();
        for (int i = 0; i < Starts; i++)
        {
            using var server = await MlosServer.StartAsync(build, args);
            await Task.Delay(1000);
            runs.Add((server.StartedIn.TotalMilliseconds, server.RssMb, server.Threads));
        }
        Console.WriteLine($"  mlos_core {string.Join(' ', args)}: start {string.Join(", ", runs.Select(r => $"{r.Ms:F0}"))} ms; " +
            $"RSS {string.Join(", ", runs.Select(r => $"{r.RssMb:F1}"))} MB; threads {string.Join(", ", runs.Select(r => r.Threads))}");
        static T Mid<T>(IEnumerable<T> v) => v.Order().ElementAt(Starts / 2);
        return (Mid(runs.Select(r => r.Ms)), Mid(runs.Select(r => r.RssMb)), Mid(runs.Select(r => r.Threads)));
    }

    /// <summary>RSS a bare python3 gains by dlopening the libtorch the Torch plugin loads (its folder's libtorch_cpu.so, then libtorch.so).</summary>
    private static (double Mb, string Libraries) LibtorchCost(string build)
    {
        var plugins = Path.Combine(build, "plugins");
        string[] libs = [Path.Combine(plugins, "libtorch_cpu.so"), Path.Combine(plugins, "libtorch.so")];
        var script = Path.Combine(Path.GetDirectoryName(build)!, "tests", "bench", "dlopen_rss.py");
        var python = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
        using var p = Process.Start(new ProcessStartInfo(python, [script, .. libs]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var stderr = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"dlopen_rss.py failed: {stderr.Result}");
        var kb = output.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(long.Parse).ToArray();
        return ((kb[1] - kb[0]) / 1024.0, "plugins/libtorch_cpu.so + libtorch.so (python3 ctypes, RTLD_NOW | RTLD_GLOBAL)");
    }
}
