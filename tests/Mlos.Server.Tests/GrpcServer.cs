using Mlos.Server.Grpc.Protocol;
using Mlos.Tests;

namespace Mlos.Server.Tests;

/// <summary>
/// A test class's server: ONNX fixtures copied into a model root of its own, each registered as
/// <c>id=file</c>, and a gRPC client on the server's gRPC port; all of it gone on dispose.
/// </summary>
public abstract class GrpcServer : IDisposable
{
    protected GrpcServer((string Id, string File)[] models, params string[] extra)
    {
        Root = Directory.CreateTempSubdirectory("mlos-grpc-").FullName;
        foreach (var (_, file) in models) File.Copy(Path.Combine(BuildTree.Models("onnx"), file), Path.Combine(Root, file));
        Process = new ServerProcess(Root, [.. models.SelectMany(m => (string[])["--model", $"{m.Id}={m.File}"]), .. extra]);
        Channel = Process.Grpc();
        Client = new GRPCInferenceService.GRPCInferenceServiceClient(Channel);
    }

    public string Root { get; }
    public ServerProcess Process { get; }
    public global::Grpc.Net.Client.GrpcChannel Channel { get; }
    public GRPCInferenceService.GRPCInferenceServiceClient Client { get; }

    public void Dispose()
    {
        Channel.Dispose();
        Process.Dispose();
        Directory.Delete(Root, recursive: true);
        GC.SuppressFinalize(this);
    }
}
