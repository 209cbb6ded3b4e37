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
            AdminGate.Require(http, state);
            using var doc = AdminJson(await Responses.Body(http, state));
            var root = Object(doc);
            var path = state.PluginPath(Text(root, "endpoint"));
            var config = Text(root, "config");
            state.CheckPluginConfig(path, config);
            var plugin = state.Core.LoadPlugin(path, Text(root, "id"), config, options: Mlos.Core.Isolation.IsolationOptions.Among(root, "plugin registration"));
            state.Log.Admin($"plugin '{plugin.Id}' loaded from {path}");
            await Responses.Json(http, 200, w =>
            {
                w.WriteString("status", "success");
                w.WriteString("plugin_id", plugin.Id);
                w.WriteString("name", plugin.Name);
            });
        }));

        app.MapPost("/models/register", (HttpContext http) => Responses.Guard(http, state, async () =>
        {
            AdminGate.Require(http, state);
            using var doc = AdminJson(await Responses.Body(http, state));
            var root = Object(doc);
            var id = Text(root, "model_id") ?? Text(root, "name");
            var path = state.ModelPath(Text(root, "path") ?? Text(root, "model_path"));
            var pluginId = Text(root, "plugin_id") ?? state.PluginFor(path);
            var model = ModelLoader.RegisterAndLoad(state, id, pluginId, path,
                new LoadOptions(Text(root, "framework"), Text(root, "config"), JsonValue(root, "dynamic_batching"), CallTimeout: JsonValue(root, "call_timeout_ms")));
            await Responses.Json(http, 200, w =>
            {
                w.WriteString("status", "success");
                w.WriteString("model_id", model.Id);
                w.WriteString("plugin_id", model.Plugin.Id);
                w.WriteString("path", model.Path);
            });
        }));

        app.MapPost("/models/{**id}", (HttpContext http, string id) => Responses.Guard(http, state, () =>
            PathIds.Between(http, "/models/", "/inference") is { } model
                ? Infer(http, state, model)
                : Responses.Error(http, state, 404, $"no route POST /models/{id}")));
    }

    /// <summary>
    /// Untyped inference: named arrays go to the plugin as they are; <c>{"input": "text"}</c> sends the
    /// text's UTF-8 bytes (the guide's raw-bytes plugins) and a UTF-8 answer comes back as a string.
    /// </summary>
    private static async Task Infer(HttpContext http, ServerState state, string id)
    {
        var model = state.Core.GetModel(id);
        using var ticket = state.Admit(model.Id); // before the body: --max-queue bounds what a model's requests hold
        using var body = await RequestBody.ReadAsync(http, state.Options.MaxBodyBytes);
        using var run = MlosRun.Run(state, model, body);
        await MlosAnswer.SendAsync(http, model, run);
    }

    /// <summary>
    /// An admin body, its every string and name checked to be text: JSON allows escapes of lone
    /// surrogates, which no string can hold, and reading one later would fail as a server error.
    /// </summary>
    private static JsonDocument AdminJson(byte[] body)
    {
        var doc = JsonDocument.Parse(body);
        try
        {
            CheckText(doc.RootElement);
            return doc;
        }
        catch (InvalidOperationException)
        {
            doc.Dispose();
            throw new MlosException(SmiStatus.InvalidParam, "the request body holds a string that is not valid text (an unpaired surrogate escape or bytes that are not UTF-8)");
        }
    }

    private static void CheckText(JsonElement e)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var p in e.EnumerateObject())
                {
                    _ = p.Name;
                    CheckText(p.Value);
                }
                break;
            case JsonValueKind.Array:
                foreach (var item in e.EnumerateArray()) CheckText(item);
                break;
            case JsonValueKind.String:
                _ = e.GetString();
                break;
        }
    }

    private static JsonElement Object(JsonDocument doc) =>
        doc.RootElement.ValueKind == JsonValueKind.Object ? doc.RootElement
        : throw new MlosException(SmiStatus.InvalidParam, "the request body must be a JSON object");

    /// <summary>A member as JSON text (a string's value taken as the JSON it holds); null when absent.</summary>
    private static string? JsonValue(JsonElement root, string name) =>
        !root.TryGetProperty(name, out var v) ? null : v.ValueKind == JsonValueKind.String ? v.GetString() : v.GetRawText();

    private static string? Text(JsonElement root, string name) =>
        root.TryGetProperty(name, out var v) ? v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Null => null,
            JsonValueKind.Object or JsonValueKind.Array => v.GetRawText(),
            _ => throw new MlosException(SmiStatus.InvalidParam, $"\"{name}\" must be a string"),
        } : null;
}
