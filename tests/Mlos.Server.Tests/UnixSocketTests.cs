using System.Diagnostics;
using System.Net.Sockets;
using Mlos.Tests;

namespace Mlos.Server.Tests;

/// <summary>
/// <c>-s/--socket PATH</c>: the REST API on a unix domain socket, for co-located clients and
/// sidecars, reached with <c>curl --unix-socket</c>; mode 0660; a stale file replaced, anything
/// else at the path refused; the file gone after a clean stop.
/// </summary>
public sealed class UnixSocketTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mlos-sock-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out) Curl(params string[] args)
    {
        var info = new ProcessStartInfo("curl", ["-s", "-w", "\n%{http_code}", .. args]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(info)!;
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit(30000);
        var lines = output.TrimEnd().Split('\n');
        return (int.Parse(lines[^1]), string.Join('\n', lines[..^1]));
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task The_rest_api_answers_on_the_socket_with_mode_0660_and_the_file_goes_at_exit()
    {
        File.Copy(Path.Combine(BuildTree.Models("onnx"), "mlp.onnx"), Path.Combine(_dir, "mlp.onnx"));
        var socket = Path.Combine(_dir, "mlos.sock");
        // A stale socket a killed server left behind: bound, never unlinked, nobody listening
        // (.NET unlinks what it bound when the socket is disposed, so another process makes it).
        using (var stale = Process.Start("/usr/bin/python3", ["-c", $"import socket; socket.socket(socket.AF_UNIX).bind('{socket}')"]))
            stale.WaitForExit(30000);
        Assert.True(File.Exists(socket));

        using var server = new ServerProcess(_dir, "--model", "mlp=mlp.onnx", "-s", socket);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite, File.GetUnixFileMode(socket));
        var (ready, body) = Curl("--unix-socket", socket, "http://localhost/v2/health/ready");
        Assert.Equal(200, ready);
        Assert.Contains("\"ready\":true", body);
        var (infer, answer) = Curl("--unix-socket", socket, "-H", "Content-Type: application/json", "-d",
            """{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}]}""",
            "http://localhost/v2/models/mlp/infer");
        Assert.Equal(200, infer);
        Assert.Contains("\"shape\":[1,4]", answer);
        // The TCP port serves on as before.
        Assert.True((await server.Client.GetAsync("/v2/health/live")).IsSuccessStatusCode);

        server.Terminate();
        Assert.Equal(0, server.WaitForExit(TimeSpan.FromSeconds(20)));
        Assert.False(File.Exists(socket));
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task Grpc_answers_on_its_own_socket_with_mode_0660_even_without_a_grpc_port()
    {
        File.Copy(Path.Combine(BuildTree.Models("onnx"), "mlp.onnx"), Path.Combine(_dir, "mlp.onnx"));
        var socket = Path.Combine(_dir, "grpc.sock");
        using var server = new ServerProcess(_dir, "--model", "mlp=mlp.onnx", "--no-grpc", "--grpc-socket", socket);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite, File.GetUnixFileMode(socket));
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, token) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await s.ConnectAsync(new UnixDomainSocketEndPoint(socket), token);
                return new NetworkStream(s, ownsSocket: true);
            },
        };
        using var channel = global::Grpc.Net.Client.GrpcChannel.ForAddress("http://localhost", new() { HttpHandler = handler });
        var client = new Grpc.Protocol.GRPCInferenceService.GRPCInferenceServiceClient(channel);
        Assert.True((await client.ModelReadyAsync(new() { Name = "mlp" })).Ready);
        var request = new Grpc.Protocol.ModelInferRequest { ModelName = "mlp" };
        var input = new Grpc.Protocol.ModelInferRequest.Types.InferInputTensor { Name = "input", Datatype = "FP32", Shape = { 1, 16 } };
        input.Contents = new() { Fp32Contents = { Enumerable.Range(1, 16).Select(i => (float)i) } };
        request.Inputs.Add(input);
        var answer = await client.ModelInferAsync(request);
        Assert.Equal(new long[] { 1, 4 }, answer.Outputs[0].Shape);
        Assert.Equal(16, answer.RawOutputContents[0].Length);
        // REST stays on its TCP port; the socket speaks HTTP/2 only.
        Assert.True((await server.Client.GetAsync("/v2/health/ready")).IsSuccessStatusCode);
        Assert.NotEqual(200, Curl("--unix-socket", socket, "http://localhost/v2/health/ready").Code);

        server.Terminate();
        Assert.Equal(0, server.WaitForExit(TimeSpan.FromSeconds(20)));
        Assert.False(File.Exists(socket));
    }

    [Fact]
    public void The_rest_and_grpc_sockets_cannot_be_one_file()
    {
        var socket = Path.Combine(_dir, "both.sock");
        var error = Assert.Throws<InvalidOperationException>(() => new ServerProcess(_dir, "-s", socket, "--grpc-socket", socket)).Message;
        Assert.Contains("--socket and --grpc-socket are both", error);
    }

    [Fact]
    public void A_path_that_is_not_a_socket_or_is_in_use_stops_the_start()
    {
        var file = Path.Combine(_dir, "not-a-socket");
        File.WriteAllText(file, "keep me");
        var error = Assert.Throws<InvalidOperationException>(() => new ServerProcess(_dir, "-s", file)).Message;
        Assert.Contains("is not a socket", error);
        Assert.Equal("keep me", File.ReadAllText(file));

        var live = Path.Combine(_dir, "live.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(live));
        listener.Listen();
        error = Assert.Throws<InvalidOperationException>(() => new ServerProcess(_dir, "-s", live)).Message;
        Assert.Contains("another server is listening", error);
        Assert.True(File.Exists(live));
    }
}
