using Mlos.Core;
using Mlos.Core.Models;

namespace Mlos.Server;

/// <summary>
/// KServe v2 / Open Inference Protocol: health, server and model metadata, model readiness,
/// inference (see <see cref="KServeInfer"/>) and the model repository.
/// </summary>
internal static class KServeRoutes
{
    public static void Map(WebApplication app, ServerState state, ModelRepository? repository)
    {
        app.MapPost("/v2/repository/index", (HttpContext http) => Responses.Guard(http, state, () =>
        {
            var models = state.Core.Models.ToDictionary(m => m.Id);
            var names = (repository?.Names ?? []).Union(models.Keys).Order().ToArray();
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            using (var w = new System.Text.Json.Utf8JsonWriter(buffer, AnswerJson.WriterOptions))
            {
                w.WriteStartArray();
                foreach (var n in names)
                {
                    w.WriteStartObject();
                    w.WriteString("name", n);
                    bool ready = models.TryGetValue(n, out var m) && m.State == ModelState.Loaded;
                    w.WriteString("state", ready ? "READY" : "UNAVAILABLE");
                    if (m?.Version is { } v) w.WriteString("version", v);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            return Responses.Raw(http, 200, buffer.WrittenMemory);
        }));
        app.MapPost("/v2/repository/models/{name}/load", (HttpContext http, string name) => Responses.Guard(http, state, () =>
        {
            AdminGate.Require(http, state);
            var id = PathIds.Segment(http, name, 3);
            if (repository is not null) repository.Load(id);
            else state.Core.LoadModel(id);
            state.Log.Admin($"model '{id}' loaded");
            return Responses.Json(http, 200, w => w.WriteString("status", "success"));
        }));
        app.MapPost("/v2/repository/models/{name}/unload", (HttpContext http, string name) => Responses.Guard(http, state, () =>
        {
            AdminGate.Require(http, state);
            var id = state.Core.GetModel(PathIds.Segment(http, name, 3)).Id;
            state.Core.UnloadModel(id);
            state.Log.Admin($"model '{id}' unloaded");
            return Responses.Json(http, 200, w => w.WriteString("status", "success"));
        }));
        app.MapGet("/v2/health/live", (HttpContext http) => Responses.Guard(http, state, () => Responses.Json(http, 200, w => w.WriteBoolean("live", true))));
        // Not ready (503) while the models given at start still load.
        app.MapGet("/v2/health/ready", (HttpContext http) => Responses.Guard(http, state, () =>
            Responses.Json(http, state.Started ? 200 : 503, w => w.WriteBoolean("ready", state.Started))));
        app.MapGet("/v2", (HttpContext http) => Responses.Guard(http, state, () => Responses.Json(http, 200, w =>
        {
            w.WriteString("name", "mlos-core");
            w.WriteString("version", MlosRoutes.Version);
            // What this server implements of the protocol's extensions, in its names.
            w.WriteStartArray("extensions");
            w.WriteStringValue("binary_tensor_data");
            w.WriteStringValue("model_repository");
            w.WriteStringValue("statistics");
            w.WriteEndArray();
        })));
        // The statistics extension: every model, one, or one version.
        app.MapGet("/v2/models/stats", (HttpContext http) => Responses.Guard(http, state, () =>
            Responses.Raw(http, 200, RegistryJson.Statistics(state.Core.Models))));
        app.MapGet("/v2/models/{name}/stats", (HttpContext http, string name) => Responses.Guard(http, state, () =>
            Responses.Raw(http, 200, RegistryJson.Statistics([state.Core.GetModel(PathIds.Segment(http, name, 2))]))));
        app.MapGet("/v2/models/{name}/versions/{version}/stats", (HttpContext http, string name, string version) => Responses.Guard(http, state, () =>
        {
            var model = state.Core.GetModel(PathIds.Segment(http, name, 2));
            model.RequireVersion(version);
            return Responses.Raw(http, 200, RegistryJson.Statistics([model]));
        }));
        app.MapGet("/v2/models/{name}", (HttpContext http, string name) => Responses.Guard(http, state, () =>
            Responses.Raw(http, 200, RegistryJson.ModelInfo(state.Core.GetModel(PathIds.Segment(http, name, 2))))));
        app.MapGet("/v2/models/{name}/versions/{version}", (HttpContext http, string name, string version) => Responses.Guard(http, state, () =>
        {
            var model = state.Core.GetModel(PathIds.Segment(http, name, 2));
            model.RequireVersion(version);
            return Responses.Raw(http, 200, RegistryJson.ModelInfo(model));
        }));
        app.MapPost("/v2/models/{name}/infer", (HttpContext http, string name) =>
            Responses.Guard(http, state, (name, (string?)null), static (h, s, a) => KServeInfer.Handle(h, s, a.Item1, a.Item2)));
        app.MapPost("/v2/models/{name}/versions/{version}/infer", (HttpContext http, string name, string version) =>
            Responses.Guard(http, state, (name, (string?)version), static (h, s, a) => KServeInfer.Handle(h, s, a.Item1, a.Item2)));
        app.MapGet("/v2/models/{name}/versions/{version}/ready", (HttpContext http, string name, string version) =>
            Responses.Guard(http, state, () => Ready(http, state, name, version)));
        app.MapGet("/v2/models/{name}/ready", (HttpContext http, string name) => Responses.Guard(http, state, () => Ready(http, state, name, null)));
    }

    private static Task Ready(HttpContext http, ServerState state, string name, string? version)
    {
        {
            var model = state.Core.GetModel(PathIds.Segment(http, name, 2));
            model.RequireVersion(version);
            bool ready = model.State == ModelState.Loaded;
            return Responses.Json(http, ready ? 200 : 400, w =>
            {
                w.WriteString("name", model.Id);
                w.WriteBoolean("ready", ready);
            });
        }
    }
}
