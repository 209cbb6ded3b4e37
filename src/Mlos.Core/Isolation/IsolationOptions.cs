using System.Text.Json;
using Mlos.Smi.Abi;

namespace Mlos.Core.Isolation;

/// <summary>Where a plugin's code runs.</summary>
public enum PluginIsolation
{
    /// <summary>In the core's process: the fastest path, and one crash takes the core down.</summary>
    None,
    /// <summary>In a <c>mlos_plugin_host</c> process of its own, over a socket and shared memory.</summary>
    Process,
    /// <summary>
    /// The default rule: <see cref="None"/> for the first-party C# plugins (ONNX Runtime,
    /// TorchSharp, echo: the fast path, and code this project ships and tests), <see cref="Process"/>
    /// for every other plugin, the Python bridge included (CPython runs whatever extension
    /// modules a model imports). Resolved by <see cref="IsolationOptions.Resolve"/> at load.
    /// </summary>
    Auto,
}

/// <summary>
/// How a plugin is loaded, beside its path, id and config: one parser for the core config's
/// plugin entries, the server's register body and the C API's options string. An isolation left
/// out is the core's default (<see cref="MlosCore.DefaultIsolation"/>).
/// </summary>
public sealed record IsolationOptions(PluginIsolation? Isolation = null, ulong SharedMemoryBytes = IsolationOptions.DefaultSharedMemoryBytes)
{
    /// <summary>
    /// <c>call_timeout_ms</c>: longest an inference call may run in the plugin host before the core
    /// stops the host (SIGKILL) and fails the call with TIMEOUT; 0 (the default): no limit.
    /// </summary>
    public int CallTimeoutMs { get; init; }

    /// <summary>
    /// <c>memory_limit_mb</c>: the host's data segment limit (RLIMIT_DATA: heap and private
    /// writable mappings); an allocation past it fails in the plugin. 0 (the default): none.
    /// </summary>
    public int MemoryLimitMb { get; init; }

    /// <summary>
    /// <c>instances</c>: host processes of the plugin (1 to <see cref="MaxInstances"/>, default 1);
    /// calls spread over them, one at a time each for a plugin that is not thread-safe.
    /// </summary>
    public int Instances { get; init; } = 1;

    public const int MaxInstances = 64;

    /// <summary><c>restart</c>: how a host that died is started again.</summary>
    public RestartPolicy Restart { get; init; } = RestartPolicy.Default;

    /// <summary>Largest request plus answer one call may put in shared memory by default (2 GiB, file pages touched only as used).</summary>
    public const ulong DefaultSharedMemoryBytes = 2UL << 30;
    /// <summary>Largest <c>shared_memory_mb</c>: frame offsets are 32-bit.</summary>
    public const int MaxSharedMemoryMb = 4095;

    public static readonly IsolationOptions Default = new();

    /// <summary>The keys this record reads, for "unknown key" messages of the objects that embed them.</summary>
    public const string Keys = "isolation, instances, shared_memory_mb, call_timeout_ms, memory_limit_mb, restart";

    /// <summary>Reads one of <see cref="Keys"/> into <paramref name="options"/>; false for a key that is not one.</summary>
    public static bool TryRead(JsonProperty field, string what, ref IsolationOptions options)
    {
        switch (field.Name)
        {
            case "isolation":
                options = options with { Isolation = ParseIsolation(field.Value.ValueKind == JsonValueKind.String ? field.Value.GetString() : null, what) };
                return true;
            case "shared_memory_mb":
                if (field.Value.ValueKind != JsonValueKind.Number || !field.Value.TryGetInt32(out int mb) || mb < 1 || mb > MaxSharedMemoryMb)
                    throw new MlosException(SmiStatus.InvalidParam, $"{what}: 'shared_memory_mb' must be a whole number from 1 to {MaxSharedMemoryMb}");
                options = options with { SharedMemoryBytes = (ulong)mb << 20 };
                return true;
            case "instances":
                int n = JsonConfig.NonNegative(field, what);
                if (n is < 1 or > MaxInstances)
                    throw new MlosException(SmiStatus.InvalidParam, $"{what}: 'instances' must be a whole number from 1 to {MaxInstances}");
                options = options with { Instances = n };
                return true;
            case "call_timeout_ms":
                options = options with { CallTimeoutMs = JsonConfig.NonNegative(field, what) };
                return true;
            case "memory_limit_mb":
                int limit = JsonConfig.NonNegative(field, what);
                if (limit is > 0 and < 64)
                    throw new MlosException(SmiStatus.InvalidParam, $"{what}: 'memory_limit_mb' must be 0 (none) or at least 64: the host's own runtime needs that much");
                options = options with { MemoryLimitMb = limit };
                return true;
            case "restart":
                options = options with { Restart = RestartPolicy.Parse(field.Value, $"{what} restart") };
                return true;
            default:
                return false;
        }
    }

    /// <summary>The options among the fields of <paramref name="body"/> (a request body with keys of its own too).</summary>
    public static IsolationOptions Among(JsonElement body, string what)
    {
        var options = Default;
        if (body.ValueKind == JsonValueKind.Object)
            foreach (var field in body.EnumerateObject()) TryRead(field, what, ref options);
        return options;
    }

    /// <summary>The options of a JSON object holding only <see cref="Keys"/> (the C API's options); null or blank: the defaults.</summary>
    public static IsolationOptions Parse(string? json, string what)
    {
        if (string.IsNullOrWhiteSpace(json)) return Default;
        using var doc = JsonConfig.Parse(json, what);
        var options = Default;
        foreach (var field in JsonConfig.Object(doc.RootElement, what).EnumerateObject())
            if (!TryRead(field, what, ref options)) throw JsonConfig.UnknownKey(what, field.Name, Keys);
        return options;
    }

    public static PluginIsolation ParseIsolation(string? text, string what) => text switch
    {
        "none" => PluginIsolation.None,
        "process" => PluginIsolation.Process,
        "auto" => PluginIsolation.Auto,
        _ => throw new MlosException(SmiStatus.InvalidParam, $"{what}: 'isolation' must be \"process\", \"none\" or \"auto\""),
    };

    /// <summary>
    /// The default isolation before any config says otherwise: <c>MLOS_DEFAULT_ISOLATION</c>
    /// ("process", "none" or "auto") when set, so that a whole test suite can run either way;
    /// else <see cref="PluginIsolation.Auto"/>.
    /// </summary>
    public static PluginIsolation EnvironmentDefault()
    {
        var set = Environment.GetEnvironmentVariable("MLOS_DEFAULT_ISOLATION");
        return string.IsNullOrEmpty(set) ? PluginIsolation.Auto : ParseIsolation(set, "MLOS_DEFAULT_ISOLATION");
    }

    /// <summary>
    /// File names of the first-party C# plugins, which <see cref="PluginIsolation.Auto"/> runs in
    /// process. The name is all that can be known before the plugin's code runs: opening the
    /// library to ask it would run its constructors here. Whoever names a file chooses the plugin
    /// anyway, so a name is no weaker than a path; "process" set explicitly isolates these too.
    /// </summary>
    private static readonly byte[][] s_inProcessByDefault =
        ["libmlos_onnx_plugin.so"u8.ToArray(), "libmlos_torch_plugin.so"u8.ToArray(), "libmlos_echo_plugin.so"u8.ToArray()];

    /// <summary>Whether an option that only a host process has is set (instances, limits, restart, shared memory).</summary>
    public bool AsksForAHost => Instances != 1 || CallTimeoutMs > 0 || MemoryLimitMb > 0 || Restart != RestartPolicy.Default || SharedMemoryBytes != DefaultSharedMemoryBytes;

    /// <summary>
    /// Where a plugin at <paramref name="path"/> runs: its options' isolation, else the core's
    /// <paramref name="fallback"/>, with Auto made None or Process. Options that only a host has
    /// make Auto a Process (asking for instances or a call timeout asks for a host), and are
    /// refused with an explicit "none", where they could not be honoured.
    /// </summary>
    public static PluginIsolation Resolve(IsolationOptions? options, PluginIsolation fallback, NativePath? path)
    {
        var isolation = options?.Isolation ?? fallback;
        bool host = options?.AsksForAHost == true;
        if (isolation == PluginIsolation.None && host)
            throw new MlosException(SmiStatus.InvalidParam,
                "instances, call_timeout_ms, memory_limit_mb, restart and shared_memory_mb are settings of a plugin host: they need \"isolation\": \"process\" (or \"auto\"), not \"none\"");
        if (isolation == PluginIsolation.Auto && host) return PluginIsolation.Process;
        return Resolve(isolation, path);
    }

    /// <summary>Where a plugin at <paramref name="path"/> runs under <paramref name="isolation"/>: Auto made None or Process.</summary>
    public static PluginIsolation Resolve(PluginIsolation isolation, NativePath? path)
    {
        if (isolation != PluginIsolation.Auto) return isolation;
        // No path is refused by the loader: no host is started just to say so.
        if (path is null) return PluginIsolation.None;
        var bytes = path.Bytes;
        var name = bytes[(bytes.LastIndexOf((byte)'/') + 1)..];
        foreach (var firstParty in s_inProcessByDefault)
            if (name.SequenceEqual(firstParty)) return PluginIsolation.None;
        return PluginIsolation.Process;
    }

    public static string Name(PluginIsolation isolation) => isolation switch
    {
        PluginIsolation.Process => "process",
        PluginIsolation.Auto => "auto",
        _ => "none",
    };
}
