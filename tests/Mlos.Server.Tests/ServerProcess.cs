using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Mlos.Tests;

namespace Mlos.Server.Tests;

/// <summary>build/mlos_core started on a free loopback port, stopped on dispose.</summary>
public sealed class ServerProcess : IDisposable
{
    private readonly Process _process;

    public ServerProcess(string modelRoot, params string[] extra)
    {
        Port = FreePort();
        var server = BuildTree.Require(Path.Combine(BuildTree.Dir, "mlos_core"));
        var info = new ProcessStartInfo(server)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = BuildTree.Dir,
        };
        foreach (var a in (string[])["--http-port", Port.ToString(), "--model-root", modelRoot, "--plugin-dir", BuildTree.PluginDir, .. extra])
            info.ArgumentList.Add(a);
        _process = Process.Start(info)!;
        Client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{Port}"), Timeout = TimeSpan.FromSeconds(30) };
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"mlos_core exited with {_process.ExitCode}: {_process.StandardError.ReadToEnd()}");
            try
            {
                if (Client.GetAsync("/v2/health/live").Result.IsSuccessStatusCode) break;
            }
            catch (AggregateException) when (DateTime.UtcNow < deadline) { Thread.Sleep(50); }
        }
    }

    public int Port { get; }
    public HttpClient Client { get; }

    public void Dispose()
    {
        Client.Dispose();
        if (!_process.HasExited) _process.Kill();
        _process.WaitForExit(5000);
        _process.Dispose();
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
