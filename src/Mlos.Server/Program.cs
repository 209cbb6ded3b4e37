using Mlos.Core;
using Mlos.Server;

ServerOptions options;
try
{
    options = ServerOptions.Parse(args);
    if (options.Help)
    {
        Console.WriteLine(ServerOptions.Usage);
        return 0;
    }
    options.CheckSafe();
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"mlos_core: {e.Message}");
    return 2;
}

using var core = new MlosCore();
var state = new ServerState(core, options);
var repository = options.ModelRepository is { } repo ? new ModelRepository(state, repo) : null;
try
{
    PluginFolders.LoadAll(state);
    repository?.LoadAll();
    foreach (var (id, path) in options.Models)
        MlosRoutes.RegisterAndLoad(state, id, state.PluginFor(path), state.ModelPath(path), null);
}
catch (MlosException e)
{
    Console.Error.WriteLine($"mlos_core: {e.Message}");
    return 1;
}

// Plugin calls are synchronous and a slow model holds its thread for the whole call: keep enough
// pool threads ready that requests for other models (and the 503 of a full queue) are not
// starved behind them while the pool grows.
ThreadPool.GetMinThreads(out var workers, out var io);
ThreadPool.SetMinThreads(Math.Max(workers, 64), io);

var builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
ServerMetrics.AddTo(builder.Services);
builder.WebHost.ConfigureKestrel(k =>
{
    k.Limits.MaxRequestBodySize = options.MaxBodyBytes;
    k.Listen(System.Net.IPAddress.Parse(options.Host == "localhost" ? "127.0.0.1" : options.Host), options.Port);
});
var app = builder.Build();
app.MapPrometheusScrapingEndpoint("/metrics");
MlosRoutes.Map(app, state);
KServeRoutes.Map(app, state, repository);
app.MapFallback((HttpContext http) => Responses.Error(http, 404, $"no route {http.Request.Method} {http.Request.Path}"));

await app.StartAsync();
var url = $"http://{options.Host}:{options.Port}";
Console.WriteLine($"mlos_core {MlosRoutes.Version} listening on {url}: {core.Plugins.Count} plugins, {core.Models.Count} models");
foreach (var m in core.Models) DemoRequests.Print(url, m);
await app.WaitForShutdownAsync();
return 0;
