using Microsoft.Extensions.Logging.Console;
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

NativeHeap.ReturnLargeBlocksAtOnce();

// Plugin calls are synchronous and a slow model holds its thread for the whole call: keep enough
// pool threads ready that requests for other models (and the 503 of a full queue) are not
// starved behind them while the pool grows.
ThreadPool.GetMinThreads(out var workers, out var io);
ThreadPool.SetMinThreads(Math.Max(workers, 64), io);

// No config files are read (ours come from -c), so nothing watches the working folder for them.
var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = ["--hostBuilder:reloadConfigOnChange=false"] });
builder.Logging.ClearProviders();
builder.Logging.AddSimpleConsole(o =>
{
    o.SingleLine = true;
    o.UseUtcTimestamp = true;
    o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
    o.ColorBehavior = LoggerColorBehavior.Disabled;
});
// A log nobody reads (a full pipe) must not stall serving: lines are dropped instead of waited for.
builder.Services.Configure<ConsoleLoggerOptions>(o =>
{
    o.QueueFullMode = ConsoleLoggerQueueFullMode.DropWrite;
});
builder.Logging.SetMinimumLevel(options.LogLevel);
// ASP.NET Core's own information lines (hosting started, each request) are noise next to ours.
builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
// gRPC's own lines (a status raised, a message refused) repeat what ours say about the same call.
builder.Logging.AddFilter("Grpc", LogLevel.Warning);
// A failed start (a port in use) is reported by us in one line, not by the host with a stack trace.
builder.Logging.AddFilter("Microsoft.Extensions.Hosting", LogLevel.None);
// ASP.NET Core opens a logging scope for every request whenever its hosting logger is enabled at
// all (an object and an AsyncLocal switch per request, ~800 managed bytes): ours logs requests.
builder.Logging.AddFilter("Microsoft.AspNetCore.Hosting", LogLevel.None);
builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromSeconds(options.ShutdownTimeoutSeconds));
ServerMetrics.AddTo(builder.Services);
// The gRPC service is made on its first call, from the state made once the host is built.
ServerState? built = null;
RepositoryControl? control = null;
ModelMeshModels? modelMesh = null;
if (options.ServesGrpc) GrpcEndpoint.AddTo(builder.Services, options, () => (built!, control!, modelMesh));
Listeners.Configure(builder.WebHost, options);
var app = builder.Build();
var log = new ServerLog(app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("mlos_core"));

var core = new MlosCore { MaxModels = options.MaxModels, DefaultIsolation = options.Isolation ?? Mlos.Core.Isolation.IsolationOptions.EnvironmentDefault() };
ServerMetrics.Watch(core);
var state = built = new ServerState(core, options, log);
var repository = options.ModelRepositories.Count > 0 ? new ModelRepository(state, options.ModelRepositories) : null;
control = new RepositoryControl(state, repository);
// ModelMesh's models load from the folders its puller writes, in either repository layout.
if (options.ModelMesh) modelMesh = new ModelMeshModels(state, repository ?? new ModelRepository(state, []));
// Plugins and start-up models load while the web host starts (both take tens of ms, on
// different cores); /v2/health/ready says false until they have.
var loading = Task.Run(() =>
{
    PluginFolders.LoadAll(state);
    repository?.LoadAtStart();
    foreach (var (id, path) in options.Models)
        ModelLoader.RegisterAndLoad(state, id, state.PluginFor(path), state.ModelPath(path), new LoadOptions());
});

app.MapPrometheusScrapingEndpoint("/metrics");
MlosRoutes.Map(app, state);
KServeRoutes.Map(app, state, control);
if (options.ServesGrpc) GrpcEndpoint.Map(app, options);
SharedMemoryRoutes.Map(app, state);
app.MapFallback((HttpContext http) => Responses.Error(http, state, 404, $"no route {http.Request.Method} {http.Request.Path}"));

var url = $"http://{options.Host}:{options.Port}";
string? failure = null;
try
{
    Listeners.PrepareSockets(options);
    await app.StartAsync();
    Listeners.ShareSockets(options);
}
catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or UnauthorizedAccessException) // in use, no permission, no such address
{
    failure = $"cannot listen on {Listeners.Describe(options)}: {(e.InnerException ?? e).Message}";
}
// A port in use is reported once the loading has ended too: the core must not be torn down under it.
try { await loading; }
catch (MlosException e) { failure ??= e.Message; }
catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException) { failure ??= e.Message; } // an unreadable plugin folder
if (failure is not null)
{
    Console.Error.WriteLine($"mlos_core: {failure}");
    await app.StopAsync();
    try { core.Dispose(); }
    catch (MlosException e) { Console.Error.WriteLine($"mlos_core: {e.Message}"); }
    return 1;
}
state.MarkStarted();
Console.WriteLine($"mlos_core {MlosRoutes.Version} listening on {Listeners.Describe(options)}: {core.Plugins.Count} plugins, {core.Models.Count} models");
foreach (var m in core.Models.DistinctBy(m => m.Id)) DemoRequests.Print(url, m); // one line per model: unversioned requests reach its highest version

// Poll mode follows the repository folders from here on, until shutdown begins.
if (repository is not null && options.ModelControl == ModelControlMode.Poll)
    _ = Task.Run(() => repository.PollAsync(app.Lifetime.ApplicationStopping));

long stopping = 0;
app.Lifetime.ApplicationStopping.Register(() => stopping = System.Diagnostics.Stopwatch.GetTimestamp());
await app.WaitForShutdownAsync();
Shutdown.TearDown(core, stopping, options.ShutdownTimeoutSeconds);
Listeners.RemoveSockets();
state.SharedMemory.Dispose();
return 0;
