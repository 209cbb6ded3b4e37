using Mlos.Core;
using Mlos.Core.Models;

namespace Mlos.Server;

/// <summary>
/// KServe v2 / Open Inference Protocol: health, server and model metadata, model readiness,
/// inference (see <see cref="KServeInfer"/>) and the model repository.
/// </summary>
internal static class KServeRoutes
{
    public const string ServerName = "mlos-core";

    /// <summary>What this server implements of the protocol's extensions, in the protocol's names (REST and gRPC server metadata).</summary>
    public static IEnumerable<string> Extensions(ServerOptions options)
    {
        yield return "binary_tensor_data";
        yield return "model_repository";
        yield return "statistics";
        if (options.AllowSharedMemory) yield return "system_shared_memory";
    }

    public static void Map(WebApplication app, ServerState state, RepositoryControl repository)
    {
        app.MapPost("/v2/repository/index", (HttpContext http) => Responses.Guard(http, state, () =>
        {
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            using (var w = new System.Text.Json.Utf8JsonWriter(buffer, AnswerJson.WriterOptions))
            {
                w.WriteStartArray();
                foreach (var e in repository.Index())
                {
                    w.WriteStartObject();
                    w.WriteString("name", e.Name);
                    w.WriteString("state", e.Ready ? "READY" : "UNAVAILABLE");
                    if (e.Version is { } v) w.WriteString("version", v);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            return Responses.Raw(http, 200, buffer.WrittenMemory);
        }));
        app.MapPost("/v2/repository/models/{name}/load", (HttpContext http, string name) => Responses.Guard(http, state, () =>
        {
            AdminGate.Require(http, state);
            repository.Load(PathIds.Segment(http, name, 3));
            return Responses.Json(http, 200, w => w.WriteString("status", "success"));
        }));
        app.MapPost("/v2/repository/models/{name}/unload", (HttpContext http, string name) => Responses.Guard(http, state, () =>
        {
            AdminGate.Require(http, state);
            repository.Unload(PathIds.Segment(http, name, 3));
            return Responses.Json(http, 200, w => w.WriteString("status", "success"));
        }));
        app.MapGet("/v2/health/live", (HttpContext http) => Responses.Guard(http, state, () => Responses.Json(http, 200, w => w.WriteBoolean("live", true))));
        // Not ready (503) while the models given at start still load.
        // A plugin whose host process died is named: its models answer not ready, the others serve.
        app.MapGet("/v2/health/ready", (HttpContext http) => Responses.Guard(http, state, () =>
            Responses.Json(http, state.Started ? 200 : 503, w =>
            {
                w.WriteBoolean("ready", state.Started);
                var down = state.Core.Plugins.Where(p => !p.IsAlive).ToArray();
                if (down.Length == 0) return;
                w.WriteStartArray("plugins_down");
                foreach (var p in down) w.WriteStringValue(p.Id);
                w.WriteEndArray();
            })));
        app.MapGet("/v2", (HttpContext http) => Responses.Guard(http, state, () => Responses.Json(http, 200, w =>
        {
            w.WriteString("name", ServerName);
            w.WriteString("version", MlosRoutes.Version);
            w.WriteStartArray("extensions");
            foreach (var e in Extensions(state.Options)) w.WriteStringValue(e);
            w.WriteEndArray();
        })));
        // The statistics extension: every model, one, or one version.
        app.MapGet("/v2/models/stats", (HttpContext http) => Responses.Guard(http, state, () =>
            Responses.Raw(http, 200, RegistryJson.Statistics(state.Core.Models))));
        app.MapGet("/v2/models/{name}/stats", (HttpContext http, string name) => Responses.Guard(http, state, () =>
            Responses.Raw(http, 200, RegistryJson.Statistics(state.Core.GetVersions(PathIds.Segment(http, name, 2)).All))));
        app.MapGet("/v2/models/{name}/versions/{version}/stats", (HttpContext http, string name, string version) => Responses.Guard(http, state, () =>
        {
            var model = state.Core.GetModel(PathIds.Segment(http, name, 2), version);
            return Responses.Raw(http, 200, RegistryJson.Statistics([model]));
        }));
        app.MapGet("/v2/models/{name}", (HttpContext http, string name) => Responses.Guard(http, state, () =>
        {
            var versions = state.Core.GetVersions(PathIds.Segment(http, name, 2));
            return Responses.Raw(http, 200, RegistryJson.ModelInfo(versions.Current, versions));
        }));
        app.MapGet("/v2/models/{name}/versions/{version}", (HttpContext http, string name, string version) => Responses.Guard(http, state, () =>
        {
            var versions = state.Core.GetVersions(PathIds.Segment(http, name, 2));
            return Responses.Raw(http, 200, RegistryJson.ModelInfo(versions.Get(version), versions));
        }));
        // Triton's model configuration extension: the effective config (see Triton.EffectiveConfig).
        app.MapGet("/v2/models/{name}/config", (HttpContext http, string name) => Responses.Guard(http, state, () =>
            Config(http, state, state.Core.GetModel(PathIds.Segment(http, name, 2)))));
        app.MapGet("/v2/models/{name}/versions/{version}/config", (HttpContext http, string name, string version) => Responses.Guard(http, state, () =>
            Config(http, state, state.Core.GetModel(PathIds.Segment(http, name, 2), version))));
        app.MapPost("/v2/models/{name}/infer", (HttpContext http, string name) =>
            Responses.Guard(http, state, (name, (string?)null), static (h, s, a) => KServeInfer.Handle(h, s, a.Item1, a.Item2)));
        app.MapPost("/v2/models/{name}/versions/{version}/infer", (HttpContext http, string name, string version) =>
            Responses.Guard(http, state, (name, (string?)version), static (h, s, a) => KServeInfer.Handle(h, s, a.Item1, a.Item2)));
        app.MapGet("/v2/models/{name}/versions/{version}/ready", (HttpContext http, string name, string version) =>
            Responses.Guard(http, state, () => Ready(http, state, name, version)));
        app.MapGet("/v2/models/{name}/ready", (HttpContext http, string name) => Responses.Guard(http, state, () => Ready(http, state, name, null)));
    }

    private static Task Config(HttpContext http, ServerState state, Model model)
    {
        var config = Triton.EffectiveConfig.Of(model, state);
        return Responses.Json(http, 200, w => Triton.ModelConfigJson.Write(w, config));
    }

    private static Task Ready(HttpContext http, ServerState state, string name, string? version)
    {
        {
            var model = state.Core.GetModel(PathIds.Segment(http, name, 2), version);
            bool ready = model.IsReady;
            return Responses.Json(http, ready ? 200 : 400, w =>
            {
                w.WriteString("name", model.Id);
                w.WriteBoolean("ready", ready);
            });
        }
    }
}
