using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Mlos.Tests;

namespace Mlos.Server.Tests;

/// <summary>build/mlos_core started on a free loopback port, stopped on dispose.</summary>
public sealed class ServerProcess : IDisposable
{
    private Process _process;

    /// <summary>Starts the server and waits until it is ready (its start-up models loaded).</summary>
    public ServerProcess(string modelRoot, params string[] extra) : this(true, modelRoot, extra) { }

    /// <param name="waitReady">false: return once it is live (listening), while start-up models may still load.</param>
    public ServerProcess(bool waitReady, string modelRoot, params string[] extra)
    {
        Client = null!;
        _process = null!;
        // A free port is released before the server binds it: another test's server may take it
        // first. Such a start is tried again on new ports; any other failure is the answer.
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                Start(waitReady, modelRoot, extra);
                return;
            }
            catch (InvalidOperationException e) when (attempt < 3 && e.Message.Contains("already in use"))
            {
                Client.Dispose();
                _process.Dispose();
                lock (_output) _output.Clear();
            }
        }
    }

    private void Start(bool waitReady, string modelRoot, string[] extra)
    {
        (Port, GrpcPort) = FreePorts();
        var server = BuildTree.Require(Path.Combine(BuildTree.Dir, "mlos_core"));
        var info = new ProcessStartInfo(server)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = BuildTree.Dir,
        };
        // Every server gets its own gRPC port too: the default 8081 would be shared by parallel tests.
        string[] grpc = extra.Contains("--no-grpc") ? [] : ["--grpc-port", GrpcPort.ToString()];
        foreach (var a in (string[])["--http-port", Port.ToString(), .. grpc, "--model-root", modelRoot, "--plugin-dir", BuildTree.PluginDir, .. extra])
            info.ArgumentList.Add(a);
        _process = Process.Start(info)!;
        // Drain both pipes: a server whose log fills an unread pipe would block on it.
        _process.OutputDataReceived += (_, e) => Keep(e.Data);
        _process.ErrorDataReceived += (_, e) => Keep(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        Client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{Port}"), Timeout = TimeSpan.FromSeconds(30) };
        // Generous: a cold page cache and a loaded 2-core CI machine make libtorch slow to load.
        const int StartSeconds = 90;
        var deadline = DateTime.UtcNow.AddSeconds(StartSeconds);
        while (true)
        {
            if (_process.HasExited)
            {
                _process.WaitForExit(); // until both pipes are read to the end: the reason is in the last lines
                throw new InvalidOperationException($"mlos_core exited with {_process.ExitCode}: {Output}");
            }
            try
            {
                if (Client.GetAsync(waitReady ? "/v2/health/ready" : "/v2/health/live").Result.IsSuccessStatusCode) break;
            }
            catch (AggregateException) { Thread.Sleep(50); } // not listening yet: the deadline below decides
            if (DateTime.UtcNow > deadline)
            {
                _process.Kill(); // a server left running would slow every later test
                throw new TimeoutException($"mlos_core was not {(waitReady ? "ready" : "live")} within {StartSeconds} s: {Output}");
            }
            Thread.Sleep(10);
        }
    }

    private readonly System.Text.StringBuilder _output = new();

    private void Keep(string? line)
    {
        if (line is null) return;
        lock (_output) _output.AppendLine(line);
    }

    /// <summary>What the server has printed so far, stdout and stderr together (its log).</summary>
    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    /// <summary>
    /// The log so far once it holds <paramref name="text"/>, waiting up to 10 s: the server's
    /// pipes are read on their own threads, so a line it wrote may not have arrived yet.
    /// </summary>
    public string OutputOnce(string text)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!Output.Contains(text) && DateTime.UtcNow < deadline) Thread.Sleep(20);
        return Output;
    }

    /// <summary>Sends SIGTERM, as an orchestrator stops a server.</summary>
    public void Terminate() => Process.Start("kill", ["-TERM", _process.Id.ToString()])!.WaitForExit();

    /// <summary>Waits for the server to exit; its exit code, or null when it is still running.</summary>
    public int? WaitForExit(TimeSpan timeout) => _process.WaitForExit(timeout) ? _process.ExitCode : null;

    public int Port { get; private set; }
    public int GrpcPort { get; private set; }

    /// <summary>A gRPC channel to the server's gRPC port (h2c), for the generated client stubs.</summary>
    public global::Grpc.Net.Client.GrpcChannel Grpc() => global::Grpc.Net.Client.GrpcChannel.ForAddress($"http://127.0.0.1:{GrpcPort}");
    /// <summary>The server's process id (for /proc/PID/status).</summary>
    public int Pid => _process.Id;
    public HttpClient Client { get; private set; }

    public void Dispose()
    {
        Client.Dispose();
        if (!_process.HasExited) _process.Kill();
        _process.WaitForExit(5000);
        _process.Dispose();
    }

    /// <summary>Two free ports, both held while the second is picked: one released first could be handed out again as the other.</summary>
    private static (int Http, int Grpc) FreePorts()
    {
        using var http = new TcpListener(IPAddress.Loopback, 0);
        using var grpc = new TcpListener(IPAddress.Loopback, 0);
        http.Start();
        grpc.Start();
        return (((IPEndPoint)http.LocalEndpoint).Port, ((IPEndPoint)grpc.LocalEndpoint).Port);
    }
}

/// <summary>What admin routes need from a client: JSON bodies (the server refuses other content types there).</summary>
public static class Admin
{
    /// <summary>An empty body declared as JSON, for load and unload.</summary>
    public static StringContent Empty => new("", System.Text.Encoding.UTF8, "application/json");
}
