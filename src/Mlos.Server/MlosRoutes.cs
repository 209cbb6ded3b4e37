using System.Buffers;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Mlos.Core;
using Mlos.Smi.Abi;

namespace Mlos.Server;

/// <summary>The MLOS Core HTTP API with the original JSON shapes (design.md §4).</summary>
internal static class MlosRoutes
{
    public const string Version = "0.1.0";

    public static void Map(WebApplication app, ServerState state)
    {
        app.MapGet("/health", (HttpContext http) => Responses.Guard(http, state, () => Responses.Json(http, 200, w =>
        {
            w.WriteString("status", "healthy");
            w.WriteString("service", "mlos-core");
            w.WriteString("version", Version);
            w.WriteStartArray("apis");
            w.WriteStringValue("mlos");
            w.WriteStringValue("kserve-v2");
            w.WriteEndArray();
            w.WriteNumber("timestamp", DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        })));

        app.MapGet("/stats", (HttpContext http) => Responses.Guard(http, state, () =>
        {
            var s = state.Stats();
            return Responses.Json(http, 200, w =>
            {
                w.WriteNumber("total_requests", s.Total);
                w.WriteNumber("successful_requests", s.Ok);
                w.WriteNumber("failed_requests", s.Failed);
                w.WriteNumber("avg_response_time_us", Math.Round(s.AvgUs, 1));
                w.WriteNumber("uptime_seconds", Math.Round(s.UptimeSeconds, 1));
                w.WriteNumber("plugins", state.Core.Plugins.Count);
                w.WriteNumber("models", state.Core.Models.Count);
                // Managed bytes allocated since start: benchmarks divide its growth by requests served.
                w.WriteNumber("allocated_bytes", GC.GetTotalAllocatedBytes());
            });
        }));

        app.MapGet("/plugins", (HttpContext http) => Responses.Guard(http, state, () => Responses.Raw(http, 200, RegistryJson.Plugins(state.Core))));
        app.MapGet("/models", (HttpContext http) => Responses.Guard(http, state, () => Responses.Raw(http, 200, RegistryJson.Models(state.Core))));

        app.MapPost("/plugins/register", (HttpContext http) => Responses.Guard(http, state, async () =>
        {
            Responses.RequireAdmin(http, state);
            using var doc = JsonDocument.Parse(await Responses.Body(http));
            var root = Object(doc);
            var plugin = state.Core.LoadPlugin(state.PluginPath(Text(root, "endpoint")), Text(root, "id"), Text(root, "config"));
            await Responses.Json(http, 200, w =>
            {
                w.WriteString("status", "success");
                w.WriteString("plugin_id", plugin.Id);
                w.WriteString("name", plugin.Name);
            });
        }));

        app.MapPost("/models/register", (HttpContext http) => Responses.Guard(http, state, async () =>
        {
            Responses.RequireAdmin(http, state);
            using var doc = JsonDocument.Parse(await Responses.Body(http));
            var root = Object(doc);
            var id = Text(root, "model_id") ?? Text(root, "name");
            var path = state.ModelPath(Text(root, "path") ?? Text(root, "model_path"));
            var pluginId = Text(root, "plugin_id") ?? state.PluginFor(path);
            var model = RegisterAndLoad(state, id, pluginId, path, Text(root, "framework"), Text(root, "config"), Text(root, "dynamic_batching"));
            await Responses.Json(http, 200, w =>
            {
                w.WriteString("status", "success");
                w.WriteString("model_id", model.Id);
                w.WriteString("plugin_id", model.Plugin.Id);
                w.WriteString("path", model.Path);
            });
        }));

        app.MapPost("/models/{**id}", (HttpContext http, string id) => Responses.Guard(http, state, () =>
            id.EndsWith("/inference", StringComparison.Ordinal)
                ? Infer(http, state, Uri.UnescapeDataString(id[..^"/inference".Length]))
                : Responses.Error(http, 404, $"no route POST /models/{id}")));
    }

    /// <summary>Registers and loads; a model that fails to load is unregistered again, so nothing half-made stays.</summary>
    /// <param name="batching">JSON of <c>{"max_batch_size","max_queue_delay_us"}</c> (see Mlos.Core.Batching), or null.</param>
    public static Mlos.Core.Models.Model RegisterAndLoad(ServerState state, string? id, string pluginId, string path, string? framework,
        string? config = null, string? batching = null)
    {
        var options = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(options))
        {
            w.WriteStartObject();
            if (framework is not null) w.WriteString("framework", framework);
            if (config is not null)
            {
                w.WritePropertyName("config");
                if (config.TrimStart().StartsWith('{')) w.WriteRawValue(config);
                else w.WriteStringValue(config);
            }
            if (batching is not null)
            {
                w.WritePropertyName("dynamic_batching");
                w.WriteRawValue(batching);
            }
            w.WriteEndObject();
        }
        var model = state.Core.RegisterModel(id, pluginId, path, System.Text.Encoding.UTF8.GetString(options.WrittenSpan));
        try { state.Core.LoadModel(model.Id); }
        catch
        {
            state.Core.UnregisterModel(model.Id);
            throw;
        }
        return model;
    }

    /// <summary>
    /// Untyped inference: named arrays go to the plugin as they are; <c>{"input": "text"}</c> sends the
    /// text's UTF-8 bytes (the guide's raw-bytes plugins) and a UTF-8 answer comes back as a string.
    /// </summary>
    private static async Task Infer(HttpContext http, ServerState state, string id)
    {
        using var body = await PooledBody.ReadAsync(http, state.Options.MaxBodyBytes);
        var model = state.Core.GetModel(id);
        var answer = Run(state, model, body);
        try
        {
            await Responses.Json(http, 200, w =>
            {
                w.WriteString("status", "success");
                w.WriteString("model_id", model.Id);
                w.WriteNumber("inference_time_us", (long)answer.Elapsed.TotalMicroseconds);
                w.WriteNumber("queue_time_us", (long)answer.Queued.TotalMicroseconds);
                w.WriteNumber("output_size", answer.Length);
                w.WritePropertyName("outputs");
                WriteOutput(w, answer.Output.AsMemory(0, answer.Length));
            });
        }
        finally { ArrayPool<byte>.Shared.Return(answer.Output); }
    }

    /// <summary>The plugin's answer in a rented buffer (the caller returns it).</summary>
    private readonly record struct Answer(byte[] Output, int Length, TimeSpan Elapsed, TimeSpan Queued);

    private static Answer Run(ServerState state, Mlos.Core.Models.Model model, PooledBody body)
    {
        var request = body.Array.AsMemory(0, body.Length);
        ReadOnlyMemory<byte> input = request;
        using (var doc = JsonDocument.Parse(request))
        {
            var root = Object(doc);
            if (root.TryGetProperty("input", out var text) && text.ValueKind == JsonValueKind.String && root.GetPropertyCount() == 1)
                input = Encoding.UTF8.GetBytes(text.GetString()!);
        }
        var arrived = Stopwatch.GetTimestamp();
        using var ticket = state.Admit(model.Id);
        var start = Stopwatch.GetTimestamp();
        var (output, length) = Run(state.Core, model, input.Span);
        var elapsed = Stopwatch.GetElapsedTime(start);
        var queued = Stopwatch.GetElapsedTime(arrived, start);
        ServerMetrics.Inference(model.Id, elapsed.TotalSeconds, queued.TotalSeconds);
        return new Answer(output, length, elapsed, queued);
    }

    /// <summary>The plugin's answer in a rented buffer, grown when the plugin says how much it needs.</summary>
    private static unsafe (byte[] Output, int Length) Run(MlosCore core, Mlos.Core.Models.Model model, ReadOnlySpan<byte> input)
    {
        nuint capacity = (nuint)Math.Max(64 * 1024, input.Length * 2);
        for (int attempt = 0; ; attempt++)
        {
            var output = ArrayPool<byte>.Shared.Rent((int)capacity);
            nuint size = (nuint)output.Length;
            try
            {
                fixed (byte* i = input)
                fixed (byte* o = output)
                    core.Inference(model, i, (nuint)input.Length, o, &size);
                return (output, (int)size);
            }
            catch (MlosException e) when (attempt < 2 && e.Status is SmiStatus.BufferTooSmall or SmiStatus.OutOfMemory && size > (nuint)output.Length)
            {
                ArrayPool<byte>.Shared.Return(output);
                capacity = size;
            }
            catch
            {
                ArrayPool<byte>.Shared.Return(output);
                throw;
            }
        }
    }

    /// <summary>
    /// JSON answers are embedded as JSON (the convention's <c>{"outputs":[…]}</c> unwrapped to its
    /// list); other UTF-8 as a string; anything else as base64.
    /// </summary>
    private static void WriteOutput(Utf8JsonWriter w, ReadOnlyMemory<byte> output)
    {
        try
        {
            using var doc = JsonDocument.Parse(output);
            var root = doc.RootElement;
            if (root.ValueKind == JsonValueKind.Object && root.GetPropertyCount() == 1 && root.TryGetProperty("outputs", out var list))
                list.WriteTo(w);
            else
                root.WriteTo(w);
            return;
        }
        catch (JsonException) { }
        if (System.Text.Unicode.Utf8.IsValid(output.Span)) w.WriteStringValue(output.Span);
        else w.WriteBase64StringValue(output.Span);
    }

    private static JsonElement Object(JsonDocument doc) =>
        doc.RootElement.ValueKind == JsonValueKind.Object ? doc.RootElement
        : throw new MlosException(SmiStatus.InvalidParam, "the request body must be a JSON object");

    private static string? Text(JsonElement root, string name) =>
        root.TryGetProperty(name, out var v) ? v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Null => null,
            JsonValueKind.Object or JsonValueKind.Array => v.GetRawText(),
            _ => throw new MlosException(SmiStatus.InvalidParam, $"\"{name}\" must be a string"),
        } : null;
}
