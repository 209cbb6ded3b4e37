using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Mlos.Benchmarks.Server;

/// <summary>
/// The HTTP ceiling's baseline: Kestrel with one POST endpoint that reads the request and answers
/// fixed bytes (mlos_core's answer to the same request), with the same headers. Nothing else runs
/// in the request, so its throughput is what the transport allows on this machine.
/// </summary>
internal sealed class BareKestrel : IAsyncDisposable
{
    private readonly WebApplication _app;

    private BareKestrel(WebApplication app, int port)
    {
        _app = app;
        Port = port;
    }

    public int Port { get; }

    public static async Task<BareKestrel> StartAsync(byte[] answer)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0));
        var app = builder.Build();
        var buffer = new byte[64 * 1024];
        app.MapPost("/echo", async (HttpContext http) =>
        {
            while (await http.Request.Body.ReadAsync(buffer) > 0) { } // read it all, as a server must
            http.Response.ContentType = "application/octet-stream";
            http.Response.ContentLength = answer.Length;
            await http.Response.Body.WriteAsync(answer);
        });
        await app.StartAsync();
        var address = app.Urls.First();
        return new BareKestrel(app, new Uri(address).Port);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
