using System.Diagnostics;
using System.Runtime.CompilerServices;
using Mlos.Core;
using Mlos.Smi.Abi;

namespace Mlos.Server;

/// <summary>The core behind the server, its request counters and log, and the safety rules for paths.</summary>
internal sealed class ServerState(MlosCore core, ServerOptions options, ServerLog log)
{
    private long _total, _ok, _failed, _elapsedTicks;
    private readonly long _started = Stopwatch.GetTimestamp();

    public MlosCore Core { get; } = core;

    /// <summary>Whether the plugins and models given at start have loaded: until then the server is live but not ready.</summary>
    public bool Started => Volatile.Read(ref _ready);
    private bool _ready;
    public void MarkStarted() => Volatile.Write(ref _ready, true);
    public ServerOptions Options { get; } = options;
    public ServerLog Log { get; } = log;
    public string ModelRoot { get; } = Path.GetFullPath(options.ModelRoot);
    /// <summary>The registered system shared-memory regions; every call fails with 501 unless --allow-shared-memory.</summary>
    public SharedMemoryRegions SharedMemory { get; } = new(options.AllowSharedMemory, options.MaxBodyBytes);

    /// <summary>The Triton configs of the repository models that have one (by model name), as written: the model config answers add what the model fills in.</summary>
    public System.Collections.Concurrent.ConcurrentDictionary<string, Triton.TritonModelConfig> ModelConfigs { get; } = new(StringComparer.Ordinal);

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, StrongBox<int>> _inflight = new();

    /// <summary>
    /// Admits one request to <paramref name="model"/>, or fails at once with BUSY (503) when the
    /// model already holds <see cref="ServerOptions.MaxQueue"/>: overload answers quickly instead
    /// of piling up threads. Dispose the ticket when the request is done.
    /// </summary>
    public Ticket Admit(string model)
    {
        var count = _inflight.GetOrAdd(model, static _ => new StrongBox<int>());
        if (Interlocked.Increment(ref count.Value) > Options.MaxQueue)
        {
            Interlocked.Decrement(ref count.Value);
            throw new MlosException(SmiStatus.Busy, $"model '{model}' is overloaded: {Options.MaxQueue} requests are already queued or running; retry later");
        }
        return new Ticket(count);
    }

    public readonly struct Ticket(StrongBox<int> count) : IDisposable
    {
        public void Dispose() => Interlocked.Decrement(ref count.Value);
    }

    public void Count(bool ok, long elapsedTicks)
    {
        Interlocked.Increment(ref _total);
        Interlocked.Increment(ref ok ? ref _ok : ref _failed);
        Interlocked.Add(ref _elapsedTicks, elapsedTicks);
    }

    public (long Total, long Ok, long Failed, double AvgUs, double UptimeSeconds) Stats()
    {
        long total = Volatile.Read(ref _total);
        double avg = total == 0 ? 0 : Volatile.Read(ref _elapsedTicks) * 1e6 / Stopwatch.Frequency / total;
        return (total, Volatile.Read(ref _ok), Volatile.Read(ref _failed), avg, Stopwatch.GetElapsedTime(_started).TotalSeconds);
    }

    /// <summary>A model path resolved inside the model root, symbolic links followed; anything else is refused.</summary>
    public string ModelPath(string? path)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new MlosException(SmiStatus.InvalidParam, "a model needs a path (\"path\" or \"model_path\")");
        if (path.Contains('\0')) throw new MlosException(SmiStatus.InvalidParam, "a model path cannot hold a NUL character");
        var full = Path.GetFullPath(Path.Combine(ModelRoot, path));
        var real = Resolve(full);
        if (!Inside(real, Resolve(ModelRoot)))
            throw new MlosException(SmiStatus.InvalidParam, $"model path {path} is outside the model root {ModelRoot}");
        return real;
    }

    /// <summary>A plugin endpoint (file://…, relative to the working folder) inside an allowed plugin folder.</summary>
    public string PluginPath(string? endpoint)
    {
        if (string.IsNullOrWhiteSpace(endpoint)) throw new MlosException(SmiStatus.InvalidParam, "a plugin needs an \"endpoint\" (file://path/to/plugin.so)");
        var path = endpoint.StartsWith("file://", StringComparison.Ordinal) ? endpoint["file://".Length..] : endpoint;
        if (path.Contains('\0')) throw new MlosException(SmiStatus.InvalidParam, "a plugin path cannot hold a NUL character");
        return InPluginFolder(path)
            ?? throw new MlosException(SmiStatus.InvalidParam, $"plugin {endpoint} is outside the allowed plugin folders ({string.Join(", ", Options.PluginDirs)})");
    }

    /// <summary>The real path of <paramref name="path"/> (links resolved) when it lies inside a plugin folder; null otherwise.</summary>
    public string? InPluginFolder(string path)
    {
        var real = Resolve(Path.GetFullPath(path));
        return Options.PluginDirs.Any(d => Inside(real, Resolve(d))) ? real : null;
    }

    /// <summary>
    /// Plugin configs name no code outside the plugin folders (see <see cref="ConfigFiles"/>). The
    /// Python bridge without a <c>"path"</c> would import from wherever Python's own path leads, so
    /// it must have one.
    /// </summary>
    public void CheckPluginConfig(string pluginPath, string? config)
    {
        if (Path.GetFileName(pluginPath) == PluginFolders.PythonBridge && !ConfigFiles.HasString(config, "path"))
            throw new MlosException(SmiStatus.InvalidParam,
                "the Python bridge needs \"config\": {\"path\": a folder inside a plugin folder, \"module\", \"class\"}: it imports the module from there");
        ConfigFiles.Check(config, "plugin config", p => InPluginFolder(p) is not null, $"the plugin folders ({string.Join(", ", Options.PluginDirs)})");
    }

    /// <summary>Model configs name files inside the model root or the plugin folders only.</summary>
    public void CheckModelConfig(string? config) => ConfigFiles.Check(config, "model config",
        p => InPluginFolder(p) is not null || Inside(Resolve(Path.GetFullPath(Path.Combine(ModelRoot, p))), Resolve(ModelRoot)),
        $"the model root {ModelRoot} or the plugin folders");

    /// <summary>The plugin for a model file without an explicit plugin id, by file type.</summary>
    /// <param name="format">A model format named by the caller (ModelMesh's model type: onnx, pytorch), for a file whose type says nothing; the file's type wins.</param>
    public string PluginFor(string path, string? format = null) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".onnx" => "onnx-runtime",
        ".pt" or ".pth" or ".torchscript" => "torchsharp",
        var ext => format?.ToLowerInvariant() switch
        {
            "onnx" => "onnx-runtime",
            "pytorch" or "torchscript" => "torchsharp",
            _ => throw new MlosException(SmiStatus.InvalidParam, $"no plugin_id given and no plugin known for '{ext}' files (.onnx, .pt){(format is null ? "" : $" or model format '{format}' (onnx, pytorch)")}"),
        },
    };

    private static bool Inside(string path, string root) =>
        path.StartsWith(root.EndsWith('/') ? root : root + "/", StringComparison.Ordinal);

    /// <summary>
    /// The path with every symbolic link along it resolved (the file itself may not exist yet); a
    /// loop of links is a path that names nothing, refused like any other bad path.
    /// </summary>
    private static string Resolve(string path)
    {
        try { return ResolveLinks(path); }
        catch (IOException e) { throw new MlosException(SmiStatus.InvalidParam, $"{path} cannot be resolved: {e.Message}"); }
    }

    private static string ResolveLinks(string path)
    {
        var dir = Path.GetDirectoryName(path);
        var parent = dir is null || dir == path ? path : ResolveLinks(dir);
        var full = dir is null ? path : Path.Combine(parent, Path.GetFileName(path));
        var info = new FileInfo(full);
        if (info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is { } target)
            return ResolveLinks(target.FullName);
        var d = new DirectoryInfo(full);
        if (d.LinkTarget is not null && d.ResolveLinkTarget(returnFinalTarget: true) is { } dtarget)
            return ResolveLinks(dtarget.FullName);
        return full;
    }
}
