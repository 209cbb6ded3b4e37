using System.Text.Json;
using Mlos.Smi.Abi;

namespace Mlos.Core;

/// <summary>A plugin to load when a core is created.</summary>
public sealed record PluginConfig(string Path, string? Id, string? Config, Isolation.IsolationOptions? Options = null);

/// <summary>
/// The JSON given to <c>mlos_core_create</c>:
/// <c>{"plugins":[{"path":"build/plugins/x.so","id":"x","config":{…},"isolation":"process"}],"unload_timeout_ms":30000,"default_isolation":"none"}</c>.
/// Every key is optional; unknown keys are errors, so a typo is reported instead of silently ignored.
/// </summary>
public sealed record CoreConfig(IReadOnlyList<PluginConfig> Plugins, int UnloadTimeoutMs = CoreConfig.DefaultUnloadTimeoutMs, Isolation.PluginIsolation? DefaultIsolation = null)
{
    public const int DefaultUnloadTimeoutMs = 30_000;

    public static CoreConfig Parse(string? json)
    {
        if (string.IsNullOrWhiteSpace(json)) return new CoreConfig([]);
        var plugins = new List<PluginConfig>();
        int unloadTimeout = DefaultUnloadTimeoutMs;
        Isolation.PluginIsolation? defaultIsolation = null;
        using var doc = JsonConfig.Parse(json, "core config");
        foreach (var property in JsonConfig.Object(doc.RootElement, "core config").EnumerateObject())
        {
            if (property.Name == "unload_timeout_ms")
            {
                unloadTimeout = JsonConfig.NonNegative(property, "core config");
                continue;
            }
            if (property.Name == "default_isolation")
            {
                defaultIsolation = Isolation.IsolationOptions.ParseIsolation(property.Value.ValueKind == JsonValueKind.String ? property.Value.GetString() : null, "core config 'default_isolation'");
                continue;
            }
            if (property.Name != "plugins") throw JsonConfig.UnknownKey("core config", property.Name, "plugins, unload_timeout_ms, default_isolation");
            if (property.Value.ValueKind != JsonValueKind.Array)
                throw new MlosException(SmiStatus.InvalidParam, "core config: 'plugins' must be an array");
            foreach (var entry in property.Value.EnumerateArray())
            {
                string? path = null, id = null, config = null;
                var options = Isolation.IsolationOptions.Default;
                foreach (var field in JsonConfig.Object(entry, "core config plugin").EnumerateObject())
                {
                    switch (field.Name)
                    {
                        case "path": path = JsonConfig.String(field, "core config plugin"); break;
                        case "id": id = JsonConfig.String(field, "core config plugin"); break;
                        case "config": config = JsonConfig.Text(field.Value); break;
                        default:
                            if (!Isolation.IsolationOptions.TryRead(field, "core config plugin", ref options))
                                throw JsonConfig.UnknownKey("core config plugin", field.Name, "path, id, config, " + Isolation.IsolationOptions.Keys);
                            break;
                    }
                }
                plugins.Add(new PluginConfig(path ?? throw new MlosException(SmiStatus.InvalidParam, "core config: a plugin entry has no 'path'"), id, config,
                    ReferenceEquals(options, Isolation.IsolationOptions.Default) ? null : options));
            }
        }
        return new CoreConfig(plugins, unloadTimeout, defaultIsolation);
    }
}

/// <summary>
/// Options of a model registration: <c>{"framework":"onnx","version":"1","config":{…},
/// "dynamic_batching":{…}|true|false,"timeout_ms":N,"call_timeout_ms":N,"instances":N,"max_rows":N,"optional_inputs":[…],"shapes":{…},"reshape":[…]}</c>. <c>config</c> reaches the plugin as
/// <c>smi_model_metadata_t::config</c> (objects as JSON text); <c>dynamic_batching</c> is the
/// core's (see <see cref="Batching.BatchingOptions"/>): left out, it is on where the model can batch.
/// </summary>
public sealed record ModelOptions(string? Framework, string? Version, string? Config, Mlos.Core.Batching.BatchingOptions? Batching, int TimeoutMs = 0)
{
    /// <summary>Most instances one model may have: each is a session of its own (threads, memory).</summary>
    public const int MaxInstances = 64;

    /// <summary>Independent instances of the model (<c>"instances"</c>, Triton's instance group count), 1 by default.</summary>
    public int Instances { get; init; } = 1;

    /// <summary>Most rows along dim 0 one request may carry (<c>"max_rows"</c>, Triton's max_batch_size); 0: no limit.</summary>
    public int MaxRows { get; init; }

    /// <summary>Inputs a request may leave out (<c>"optional_inputs"</c>, Triton's <c>optional</c>): the plugin decides what their absence means.</summary>
    public IReadOnlyList<string> OptionalInputs { get; init; } = Array.Empty<string>();

    /// <summary>Declared whole shapes of tensors (<c>"shapes"</c>, Triton's config dims with the batch dimension): they fix the dims the plugin's specs leave free.</summary>
    public IReadOnlyDictionary<string, long[]> DeclaredShapes { get; init; } = NoShapes;

    /// <summary>One empty set for every model that declares none (records compare it by reference).</summary>
    public static readonly IReadOnlyDictionary<string, long[]> NoShapes = new Dictionary<string, long[]>();

    /// <summary>Tensors the client sees in another shape than the model (<c>"reshape"</c>, Triton's <c>reshape</c>; see <see cref="Models.TensorReshape"/>).</summary>
    public Models.TensorReshape? Reshape { get; init; }

    /// <summary>
    /// <c>"call_timeout_ms"</c>: longest an inference call of this model may run in its plugin's host
    /// process before the core stops the host (over the plugin's own <c>call_timeout_ms</c>); 0:
    /// the plugin's. Only for an isolated plugin: a call in this process cannot be stopped.
    /// </summary>
    public int CallTimeoutMs { get; init; }

    public static ModelOptions Parse(string? json)
    {
        var batching = Mlos.Core.Batching.BatchingOptions.Default;
        if (string.IsNullOrWhiteSpace(json)) return new ModelOptions(null, null, null, batching);
        string? framework = null, version = null, config = null;
        int timeout = 0, instances = 1, maxRows = 0, callTimeout = 0;
        List<string> optional = [];
        JsonElement? reshape = null;
        Dictionary<string, long[]> shapes = [];
        using var doc = JsonConfig.Parse(json, "model options");
        foreach (var field in JsonConfig.Object(doc.RootElement, "model options").EnumerateObject())
        {
            switch (field.Name)
            {
                case "framework": framework = JsonConfig.String(field, "model options"); break;
                case "version": version = JsonConfig.String(field, "model options"); break;
                case "config": config = JsonConfig.Text(field.Value); break;
                case "timeout_ms":
                    timeout = field.Value.ValueKind == JsonValueKind.Number && field.Value.TryGetInt32(out var ms) && ms > 0 ? ms
                        : throw new MlosException(SmiStatus.InvalidParam, "model options: 'timeout_ms' must be an integer from 1 to 2147483647");
                    break;
                case "call_timeout_ms": callTimeout = JsonConfig.NonNegative(field, "model options"); break;
                case "dynamic_batching": batching = Mlos.Core.Batching.BatchingOptions.Parse(field.Value); break;
                case "instances":
                    instances = field.Value.ValueKind == JsonValueKind.Number && field.Value.TryGetInt32(out var n) && n is >= 1 and <= MaxInstances ? n
                        : throw new MlosException(SmiStatus.InvalidParam, $"model options: 'instances' must be an integer from 1 to {MaxInstances}, not {field.Value.GetRawText()}");
                    break;
                case "max_rows":
                    maxRows = field.Value.ValueKind == JsonValueKind.Number && field.Value.TryGetInt32(out var rows) && rows >= 0 ? rows
                        : throw new MlosException(SmiStatus.InvalidParam, $"model options: 'max_rows' must be a non-negative integer (0 = no limit), not {field.Value.GetRawText()}");
                    break;
                case "optional_inputs":
                    optional = field.Value.ValueKind == JsonValueKind.Array && field.Value.EnumerateArray().All(v => v.ValueKind == JsonValueKind.String)
                        ? [.. field.Value.EnumerateArray().Select(v => v.GetString()!)]
                        : throw new MlosException(SmiStatus.InvalidParam, "model options: 'optional_inputs' must be an array of input names");
                    break;
                case "shapes": shapes = Shapes(field.Value); break;
                case "reshape": reshape = field.Value; break; // read once max_rows is known: it says whether dim 0 is the batch
                default: throw JsonConfig.UnknownKey("model options", field.Name, "framework, version, config, dynamic_batching, timeout_ms, call_timeout_ms, instances, max_rows, optional_inputs, shapes, reshape");
            }
        }
        return new ModelOptions(framework, version, config, batching, timeout)
        {
            Instances = instances, MaxRows = maxRows, CallTimeoutMs = callTimeout, OptionalInputs = optional.Count == 0 ? Array.Empty<string>() : optional,
            Reshape = reshape is { } r ? Models.TensorReshape.Parse(r, batched: maxRows > 0) : null,
            DeclaredShapes = shapes.Count == 0 ? NoShapes : shapes,
        };
    }

    /// <summary><c>"shapes": {"name": [-1, 16], …}</c>: whole shapes, each dim >= 0 or -1.</summary>
    private static Dictionary<string, long[]> Shapes(JsonElement value)
    {
        const string what = "model options: 'shapes'";
        var shapes = new Dictionary<string, long[]>(StringComparer.Ordinal);
        foreach (var p in JsonConfig.Object(value, what).EnumerateObject())
        {
            shapes[p.Name] = JsonConfig.Dims(p, what);
        }
        return shapes;
    }
}

/// <summary>Small JSON helpers with error messages that say where the problem is.</summary>
internal static class JsonConfig
{
    public static JsonDocument Parse(string json, string what)
    {
        try { return JsonDocument.Parse(json); }
        catch (JsonException e) { throw new MlosException(SmiStatus.InvalidParam, $"{what} is not valid JSON: {e.Message}"); }
    }

    public static JsonElement Object(JsonElement e, string what) =>
        e.ValueKind == JsonValueKind.Object ? e : throw new MlosException(SmiStatus.InvalidParam, $"{what} must be a JSON object");

    public static string? String(JsonProperty p, string what) => p.Value.ValueKind switch
    {
        JsonValueKind.String => Decode(p.Value, $"{what}: '{p.Name}'"),
        JsonValueKind.Null => null,
        _ => throw new MlosException(SmiStatus.InvalidParam, $"{what}: '{p.Name}' must be a string"),
    };

    /// <summary>A string value as-is, null as null, anything else as its JSON text.</summary>
    public static string? Text(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => Decode(e, "a config string"),
        JsonValueKind.Null => null,
        _ => e.GetRawText(),
    };

    /// <summary>
    /// A JSON string's value. "\ud800" is valid JSON but no text: System.Text.Json refuses it with
    /// an InvalidOperationException, which is the caller's mistake, not the core's state.
    /// </summary>
    public static string Decode(JsonElement e, string what)
    {
        try { return e.GetString()!; }
        catch (InvalidOperationException) { throw new MlosException(SmiStatus.InvalidParam, $"{what} holds a lone UTF-16 surrogate escape, which is not text"); }
    }

    /// <summary>A shape: an array of at most SMI_MAX_DIMS dimensions, each >= 0 or -1 (free).</summary>
    public static long[] Dims(JsonProperty p, string what)
    {
        var v = p.Value;
        return v.ValueKind == JsonValueKind.Array && v.GetArrayLength() <= SmiVersion.MaxDims
               && v.EnumerateArray().All(d => d.ValueKind == JsonValueKind.Number && d.TryGetInt64(out var n) && n >= -1)
            ? [.. v.EnumerateArray().Select(d => d.GetInt64())]
            : throw new MlosException(SmiStatus.InvalidParam, $"{what}: '{p.Name}' must be an array of at most {SmiVersion.MaxDims} dimensions, each >= 0 or -1, not {v.GetRawText()}");
    }

    /// <summary>A whole number from 0 to int.MaxValue, or the error naming the key.</summary>
    public static int NonNegative(JsonProperty p, string what) =>
        p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt32(out var n) && n >= 0 ? n
        : throw new MlosException(SmiStatus.InvalidParam, $"{what}: '{p.Name}' must be an integer from 0 to 2147483647");

    public static MlosException UnknownKey(string what, string key, string known) =>
        new(SmiStatus.InvalidParam, $"{what}: unknown key '{key}' (known: {known})");
}
