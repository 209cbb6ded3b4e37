using Mlos.Core;
using Mlos.Core.Models;

namespace Mlos.Server;

/// <summary>
/// KServe v2 / Open Inference Protocol: health, server and model metadata, model readiness and
/// JSON-tensor inference (the binary-data extension is the next step, issue #5).
/// </summary>
internal static class KServeRoutes
{
    public static void Map(WebApplication app, ServerState state)
    {
        app.MapGet("/v2/health/live", (HttpContext http) => Responses.Guard(http, state, () => Responses.Json(http, 200, w => w.WriteBoolean("live", true))));
        app.MapGet("/v2/health/ready", (HttpContext http) => Responses.Guard(http, state, () => Responses.Json(http, 200, w => w.WriteBoolean("ready", true))));
        app.MapGet("/v2", (HttpContext http) => Responses.Guard(http, state, () => Responses.Json(http, 200, w =>
        {
            w.WriteString("name", "mlos-core");
            w.WriteString("version", MlosRoutes.Version);
            w.WriteStartArray("extensions");
            w.WriteEndArray();
        })));
        app.MapGet("/v2/models/{name}", (HttpContext http, string name) => Responses.Guard(http, state, () =>
            Responses.Raw(http, 200, RegistryJson.ModelInfo(state.Core.GetModel(Uri.UnescapeDataString(name))))));
        app.MapPost("/v2/models/{name}/infer", (HttpContext http, string name) =>
            Responses.Guard(http, state, () => KServeInfer.Handle(http, state, name, null)));
        app.MapPost("/v2/models/{name}/versions/{version}/infer", (HttpContext http, string name, string version) =>
            Responses.Guard(http, state, () => KServeInfer.Handle(http, state, name, version)));
        app.MapGet("/v2/models/{name}/ready", (HttpContext http, string name) => Responses.Guard(http, state, () =>
        {
            var model = state.Core.GetModel(Uri.UnescapeDataString(name));
            bool ready = model.State == ModelState.Loaded;
            return Responses.Json(http, ready ? 200 : 400, w =>
            {
                w.WriteString("name", model.Id);
                w.WriteBoolean("ready", ready);
            });
        }));
    }
}
