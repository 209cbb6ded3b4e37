namespace Mlos.Server;

/// <summary>The command line of mlos_core, as the original MLOS Core spells it.</summary>
internal sealed record ServerOptions
{
    public int Port { get; init; } = 8080;
    public string Host { get; init; } = "127.0.0.1";
    public List<string> PluginDirs { get; init; } = [];
    /// <summary>Where plugins run when their registration does not say (<c>--isolation</c>); null: the core's default.</summary>
    public Mlos.Core.Isolation.PluginIsolation? Isolation { get; init; }
    public string ModelRoot { get; init; } = ".";
    public long MaxBodyBytes { get; init; } = 64L << 20;
    public List<(string Id, string Path)> Models { get; init; } = [];
    public bool Help { get; init; }
    public string? AdminToken { get; init; }
    public int MaxQueue { get; init; } = 256;
    /// <summary>Model repository folders (<c>--model-repository</c>, repeatable); a model name may be in one only.</summary>
    public List<string> ModelRepositories { get; init; } = [];
    /// <summary>Triton's model control mode for the repositories.</summary>
    public ModelControlMode ModelControl { get; init; } = ModelControlMode.None;
    /// <summary>Models loaded at start in explicit mode (<c>--load-model</c>; <c>*</c> = all).</summary>
    public List<string> LoadModels { get; init; } = [];
    /// <summary>Seconds between repository scans in poll mode.</summary>
    public int RepositoryPollSeconds { get; init; } = 15;
    public int MaxModels { get; init; } = 1024;
    public int MaxConnections { get; init; } = 1024;
    public int ShutdownTimeoutSeconds { get; init; } = 20;
    public LogLevel LogLevel { get; init; } = LogLevel.Information;
    /// <summary>The gRPC port (h2c), 0 when gRPC is off.</summary>
    public int GrpcPort { get; init; } = 8081;
    public long GrpcMaxMessageBytes { get; init; } = 64L << 20;
    /// <summary>A unix domain socket that serves the REST API too (mode 0660), or none.</summary>
    public string? Socket { get; init; }
    /// <summary>A unix domain socket that serves the gRPC service (HTTP/2 only, mode 0660), or none.</summary>
    public string? GrpcSocket { get; init; }
    /// <summary>Whether the gRPC service is served at all (on its port, its socket, or both).</summary>
    public bool ServesGrpc => GrpcPort > 0 || GrpcSocket is not null;
    /// <summary>The system shared-memory extension: off unless asked for.</summary>
    public bool AllowSharedMemory { get; init; }
    /// <summary>ModelMesh's model-runtime SPI (<c>mmesh.ModelRuntime</c>) on the gRPC port, and inference routed by <c>mm-model-id</c>.</summary>
    public bool ModelMesh { get; init; }
    /// <summary>The capacity reported to ModelMesh, in bytes; 0: from the memory this process may use.</summary>
    public long ModelMeshCapacityBytes { get; init; }
    /// <summary>Every admin route refused (<c>--no-admin</c>): a server that serves the models it started with may then listen beyond loopback without a token.</summary>
    public bool NoAdmin { get; init; }

    public const string Usage = """
        mlos_core: the MLOS Core server (MLOS HTTP API, and the Open Inference Protocol over
        REST and gRPC).

          -c, --config FILE     JSON file with the same settings: {"http_port","host",
                                "grpc_port","grpc":bool,"grpc_max_message_mb","socket",
                                "grpc_socket",
                                "allow_shared_memory":bool,"modelmesh":bool,
                                "modelmesh_capacity_mb","admin":bool,
                                "plugin_dirs":[],"isolation","model_root","model_repository":DIR|[DIR…],
                                "model_control_mode","load_model":[],"repository_poll_secs",
                                "admin_token",
                                "max_body_mb","max_queue","max_models","max_connections",
                                "shutdown_timeout_s","log_level","models":{"id":"path"}};
                                options given on the command line override it; every
                                option may also be written --option=VALUE
          -p, --http-port N     port to listen on (default 8080)
          -g, --grpc-port N     port of the gRPC service inference.GRPCInferenceService,
                                HTTP/2 without TLS (default 8081)
              --no-grpc         no gRPC port
              --grpc-max-message-mb N
                                largest gRPC message received (default 64)
          -s, --socket PATH     also serve the REST API on this unix domain socket (mode 0660)
              --grpc-socket PATH
                                also serve gRPC on this unix domain socket (HTTP/2, mode 0660;
                                with --no-grpc, gRPC is served there only)
              --allow-shared-memory
                                the system shared-memory extension: clients may register POSIX
                                shared-memory regions and pass tensors through them (off by
                                default: a client that registers a region reads and writes it
                                with this server's rights)
              --modelmesh       serve ModelMesh's model-runtime SPI (mmesh.ModelRuntime) on
                                the gRPC port and route inference by the mm-model-id header
                                (keep the default loopback host: ModelMesh calls from its
                                container in the same pod)
              --modelmesh-capacity-mb N
                                model memory reported to ModelMesh (default: three quarters of
                                the memory this process may still use, container limit included)
              --host ADDRESS    address to listen on (default 127.0.0.1)
              --plugin-dir DIR  folder to load plugins from, repeatable (default: the plugins/
                                folder beside mlos_core, ../lib/mlos/plugins from it (an
                                installed tree), and ./plugins)
              --isolation process|none|auto
                                where plugins run when their registration does not say:
                                "process" puts each in a mlos_plugin_host process of its own
                                (a crash fails only its calls), "none" in this process; "auto"
                                (default): in process for the first-party C# plugins (ONNX
                                Runtime, TorchSharp, echo), in a host for every other one and
                                the Python bridge
              --model-root DIR  model paths must resolve inside it (default: the working folder)
              --max-body-mb N   largest request body accepted (default 64)
              --model-repository DIR
                                a model repository, repeatable: one folder per model, in
                                Triton's layout (config.pbtxt, version folders 1/, 2/…) or
                                ours (the model file, optional config.json)
              --model-control-mode none|explicit|poll
                                none (default): load every repository model at start; the
                                repository load/unload calls are refused. explicit: load only
                                the --load-model models at start; load/unload through the
                                repository API. poll: load every model at start, then follow
                                the folders (new, changed and removed models and versions)
              --load-model NAME a model to load at start in explicit mode, repeatable; * = all
              --repository-poll-secs N
                                seconds between scans in poll mode (default 15)
              --model ID=PATH   register and load a model at start (PATH inside the model root;
                                the plugin follows the file type: .onnx ONNX Runtime, .pt Torch)
              --max-queue N     requests one model may hold (running or waiting) before
                                more get 503 at once (default 256)
              --max-models N    models that may be registered at once (default 1024)
              --max-connections N
                                open client connections; more are closed at once
                                (default 1024)
              --shutdown-timeout-s N
                                on SIGTERM, seconds in-flight requests get to finish before
                                the rest are cut (default 20)
              --log-level LEVEL one of trace, debug, information, warning, error, none
                                (default information: failed requests and admin actions;
                                debug adds a line per successful request)
              --admin-token T   mutating routes (register, load, unload) need
                                "Authorization: Bearer T"; required to listen beyond loopback
                                unless --no-admin
              --no-admin        refuse every mutating route (403): the server serves the models
                                it started with, and may listen beyond loopback without a token
                                (KServe's single-model pods)
          -h, --help            this text
        """;

    /// <summary>Parses <paramref name="args"/>; unknown or malformed options throw with a message.</summary>
    public static ServerOptions Parse(string[] args)
    {
        var o = new ServerOptions();
        var dirs = new List<string>();
        // Lists given on the command line replace the config file's (as every option does).
        List<string> repositories = [], loadModels = [];
        args = SplitEquals(args);
        int config = Array.FindIndex(args, a => a is "-c" or "--config");
        if (config >= 0)
        {
            if (config + 1 >= args.Length) throw new ArgumentException($"{args[config]} needs a value");
            o = FromFile(args[config + 1], dirs);
            args = [.. args[..config], .. args[(config + 2)..]];
        }
        for (int i = 0; i < args.Length; i++)
        {
            string option = args[i];
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{option} needs a value");
            switch (option)
            {
                case "-p" or "--http-port":
                    o = o with { Port = PortNumber(Value()) };
                    break;
                case "--host": o = o with { Host = Value() }; break;
                case "-g" or "--grpc-port": o = o with { GrpcPort = PortNumber(Value()) }; break;
                case "--no-grpc": o = o with { GrpcPort = 0 }; break;
                case "--grpc-max-message-mb": o = o with { GrpcMaxMessageBytes = (long)Positive(Value(), option) << 20 }; break;
                case "-s" or "--socket": o = o with { Socket = Value() }; break;
                case "--grpc-socket": o = o with { GrpcSocket = Value() }; break;
                case "--allow-shared-memory": o = o with { AllowSharedMemory = true }; break;
                case "--modelmesh": o = o with { ModelMesh = true }; break;
                case "--modelmesh-capacity-mb": o = o with { ModelMeshCapacityBytes = (long)Positive(Value(), option) << 20 }; break;
                case "--no-admin": o = o with { NoAdmin = true }; break;
                case "--plugin-dir": dirs.Add(Value()); break;
                case "--isolation": o = o with { Isolation = ParseIsolation(Value(), option) }; break;
                case "--model-root": o = o with { ModelRoot = Value() }; break;
                case "--max-body-mb":
                    o = o with { MaxBodyBytes = long.TryParse(Value(), out var mb) && Megabytes(mb) > 0 ? Megabytes(mb) : throw new ArgumentException($"bad size: {args[i]}") };
                    break;
                case "--model":
                    var spec = Value();
                    int eq = spec.IndexOf('=');
                    if (eq <= 0 || eq == spec.Length - 1) throw new ArgumentException($"--model takes ID=PATH, not {spec}");
                    o.Models.Add((spec[..eq], spec[(eq + 1)..]));
                    break;
                case "--model-repository": repositories.Add(Value()); break;
                case "--model-control-mode": o = o with { ModelControl = Mode(Value()) }; break;
                case "--load-model": loadModels.Add(Value()); break;
                case "--repository-poll-secs": o = o with { RepositoryPollSeconds = Positive(Value(), option) }; break;
                case "--max-queue":
                    o = o with { MaxQueue = int.TryParse(Value(), out var q) && q > 0 ? q : throw new ArgumentException($"bad queue size: {args[i]}") };
                    break;
                case "--max-models": o = o with { MaxModels = Positive(Value(), option) }; break;
                case "--max-connections": o = o with { MaxConnections = Positive(Value(), option) }; break;
                case "--shutdown-timeout-s": o = o with { ShutdownTimeoutSeconds = Positive(Value(), option) }; break;
                case "--log-level": o = o with { LogLevel = Level(Value()) }; break;
                case "--admin-token":
                    var token = Value();
                    o = o with { AdminToken = token.Length >= 8 ? token : throw new ArgumentException("--admin-token needs at least 8 characters") };
                    break;
                case "-h" or "--help": o = o with { Help = true }; break;
                default: throw new ArgumentException($"unknown option {args[i]} (see --help)");
            }
        }
        if (o.ModelMesh && !o.ServesGrpc)
            throw new ArgumentException("--modelmesh serves ModelMesh's SPI over gRPC: it cannot be used with --no-grpc and no --grpc-socket");
        // ModelMesh sends no token and loads models through admin calls: with either, it could never place one.
        if (o.ModelMesh && (o.NoAdmin || o.AdminToken is not null))
            throw new ArgumentException($"--modelmesh cannot be used with {(o.NoAdmin ? "--no-admin" : "--admin-token")}: ModelMesh loads models through admin calls and sends no token (keep the loopback host: it calls from inside the pod)");
        if (o.GrpcPort == o.Port)
            throw new ArgumentException($"the HTTP and gRPC ports are both {o.Port}: give -g/--grpc-port another one, or --no-grpc");
        if (o.Socket is { } rest && o.GrpcSocket is { } grpc && Path.GetFullPath(rest) == Path.GetFullPath(grpc))
            throw new ArgumentException($"--socket and --grpc-socket are both {Path.GetFullPath(rest)}: one socket serves HTTP/1.1 (REST), the other HTTP/2 (gRPC)");
        if (repositories.Count > 0) o = o with { ModelRepositories = repositories };
        if (loadModels.Count > 0) o = o with { LoadModels = loadModels };
        if (o.ModelControl != ModelControlMode.None && o.ModelRepositories.Count == 0)
            throw new ArgumentException($"--model-control-mode {o.ModelControl.ToString().ToLowerInvariant()} needs a --model-repository");
        if (o.LoadModels.Count > 0 && o.ModelControl != ModelControlMode.Explicit)
            throw new ArgumentException("--load-model needs --model-control-mode explicit (in the other modes every model is loaded at start)");
        if (dirs.Count == 0) // the build tree's build/plugins, an installed tree's lib/mlos/plugins, ./plugins
            dirs.AddRange([Path.Combine(AppContext.BaseDirectory, "plugins"), Path.Combine(AppContext.BaseDirectory, "..", "lib", "mlos", "plugins"),
                Path.GetFullPath("plugins")]);
        return o with { PluginDirs = dirs.Select(Path.GetFullPath).Distinct().ToList() };
    }

    private static ServerOptions FromFile(string path, List<string> dirs)
    {
        System.Text.Json.JsonDocument doc;
        try { doc = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(path)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException)
        {
            throw new ArgumentException($"cannot read config {path}: {e.Message}");
        }
        using (doc)
        {
            var o = new ServerOptions();
            if (doc.RootElement.ValueKind != System.Text.Json.JsonValueKind.Object) throw new ArgumentException($"config {path} must be a JSON object");
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                try
                {
                    o = p.Name switch
                    {
                        "http_port" => o with { Port = p.Value.GetInt32() },
                        "host" => o with { Host = p.Value.GetString()! },
                        "grpc_port" => o with { GrpcPort = p.Value.GetInt32() },
                        "grpc" => p.Value.GetBoolean() ? o : o with { GrpcPort = 0 },
                        "grpc_max_message_mb" => o with { GrpcMaxMessageBytes = Megabytes(p.Value.GetInt64()) },
                        "socket" => o with { Socket = p.Value.GetString() },
                        "grpc_socket" => o with { GrpcSocket = p.Value.GetString() },
                        "allow_shared_memory" => o with { AllowSharedMemory = p.Value.GetBoolean() },
                        "modelmesh" => o with { ModelMesh = p.Value.GetBoolean() },
                        "modelmesh_capacity_mb" => o with { ModelMeshCapacityBytes = Megabytes(p.Value.GetInt64()) is > 0 and var bytes ? bytes : -1 },
                        "admin" => o with { NoAdmin = !p.Value.GetBoolean() },
                        "model_root" => o with { ModelRoot = p.Value.GetString()! },
                        "isolation" => o with { Isolation = ParseIsolation(Text(p.Value), $"config {path}: isolation") },
                        "model_repository" => o with { ModelRepositories = p.Value.ValueKind == System.Text.Json.JsonValueKind.Array
                            ? p.Value.EnumerateArray().Select(d => Text(d)).ToList() : [Text(p.Value)] },
                        "model_control_mode" => o with { ModelControl = Mode(p.Value.GetString()!) },
                        "load_model" => o with { LoadModels = p.Value.EnumerateArray().Select(m => Text(m)).ToList() },
                        "repository_poll_secs" => o with { RepositoryPollSeconds = p.Value.GetInt32() },
                        "admin_token" => o with { AdminToken = p.Value.GetString() },
                        "max_body_mb" => o with { MaxBodyBytes = Megabytes(p.Value.GetInt64()) },
                        "max_queue" => o with { MaxQueue = p.Value.GetInt32() },
                        "max_models" => o with { MaxModels = p.Value.GetInt32() },
                        "max_connections" => o with { MaxConnections = p.Value.GetInt32() },
                        "shutdown_timeout_s" => o with { ShutdownTimeoutSeconds = p.Value.GetInt32() },
                        "log_level" => o with { LogLevel = Level(p.Value.GetString()!) },
                        "plugin_dirs" => AddAll(o, () => dirs.AddRange(p.Value.EnumerateArray().Select(d => d.GetString()!))),
                        "models" => AddAll(o, () => o.Models.AddRange(p.Value.EnumerateObject().Select(m => (m.Name, m.Value.GetString()!)))),
                        _ => throw new ArgumentException($"config {path}: unknown key '{p.Name}'"),
                    };
                }
                catch (InvalidOperationException)
                {
                    throw new ArgumentException($"config {path}: '{p.Name}' has the wrong type ({p.Value.ValueKind})");
                }
            }
            if (o.Port is <= 0 or > 65535 || o.GrpcPort is < 0 or > 65535 || o.GrpcMaxMessageBytes <= 0 || o.Socket is "" || o.GrpcSocket is "" || o.MaxQueue <= 0 || o.MaxBodyBytes <= 0 || o.AdminToken is { Length: < 8 }
                || o.MaxModels <= 0 || o.MaxConnections <= 0 || o.ShutdownTimeoutSeconds <= 0 || o.RepositoryPollSeconds <= 0 || o.ModelMeshCapacityBytes < 0)
                throw new ArgumentException($"config {path}: a value is out of range (port, grpc_port, grpc_max_message_mb, socket, grpc_socket, max_queue, max_body_mb, max_models, max_connections, shutdown_timeout_s, repository_poll_secs, modelmesh_capacity_mb, admin_token of 8+ characters)");
            return o;
        }

        // A string, never null: a wrong type is reported with the key by the catch above.
        static string Text(System.Text.Json.JsonElement e) => e.GetString() ?? throw new InvalidOperationException();

        static ServerOptions AddAll(ServerOptions o, Action add)
        {
            add();
            return o;
        }
    }

    /// <summary><c>--option=VALUE</c> as <c>--option VALUE</c> (Triton's and KServe's manifests write it so); a value stays as it is.</summary>
    private static string[] SplitEquals(string[] args) =>
        args.SelectMany(a => a.StartsWith("--", StringComparison.Ordinal) && a.IndexOf('=') is > 2 and var eq ? [a[..eq], a[(eq + 1)..]] : new[] { a }).ToArray();

    /// <summary>Megabytes as bytes; a value whose bytes would not fit is out of range (0, refused by the range check).</summary>
    private static long Megabytes(long mb) => mb is > 0 and <= (long.MaxValue >> 20) ? mb << 20 : 0;

    private static int PortNumber(string value) =>
        int.TryParse(value, out var p) && p is > 0 and < 65536 ? p : throw new ArgumentException($"bad port: {value}");

    private static int Positive(string value, string option) =>
        int.TryParse(value, out var n) && n > 0 ? n : throw new ArgumentException($"{option} needs a positive integer, not '{value}'");

    private static Mlos.Core.Isolation.PluginIsolation ParseIsolation(string value, string what)
    {
        try { return Mlos.Core.Isolation.IsolationOptions.ParseIsolation(value, what); }
        catch (Mlos.Core.MlosException e) { throw new ArgumentException(e.Message); }
    }

    private static ModelControlMode Mode(string value) => value switch
    {
        "none" => ModelControlMode.None,
        "explicit" => ModelControlMode.Explicit,
        "poll" => ModelControlMode.Poll,
        _ => throw new ArgumentException($"unknown model control mode '{value}' (none, explicit, poll)"),
    };

    private static LogLevel Level(string value) => value.ToLowerInvariant() switch
    {
        "trace" => LogLevel.Trace,
        "debug" => LogLevel.Debug,
        "information" or "info" => LogLevel.Information,
        "warning" or "warn" => LogLevel.Warning,
        "error" => LogLevel.Error,
        "none" => LogLevel.None,
        _ => throw new ArgumentException($"unknown log level '{value}' (trace, debug, information, warning, error, none)"),
    };

    /// <summary>Beyond loopback only with an admin token protecting the mutating routes.</summary>
    public void CheckSafe()
    {
        if (Host is not ("127.0.0.1" or "localhost" or "::1") && AdminToken is null && !NoAdmin)
            throw new ArgumentException($"refusing to listen on {Host} without --admin-token or --no-admin: only loopback is open without one");
    }
}

/// <summary>Triton's <c>--model-control-mode</c>: who decides which repository models are loaded.</summary>
internal enum ModelControlMode { None, Explicit, Poll }
