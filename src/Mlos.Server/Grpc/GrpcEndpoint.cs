using Mlos.Server.Grpc;

namespace Mlos.Server;

/// <summary>The gRPC service's registration: message limits from the options, and the service made from the server's state.</summary>
internal static class GrpcEndpoint
{
    public static void AddTo(IServiceCollection services, ServerOptions options, Func<(ServerState State, RepositoryControl Repository)> built)
    {
        // Mapping the service builds the protos' descriptors (~10-15 ms here) on the start-up path:
        // built on another core meanwhile, the mapping finds them ready.
        _ = Task.Run(() => Grpc.Protocol.GrpcServiceReflection.Descriptor);
        services.AddGrpc(o =>
        {
            o.MaxReceiveMessageSize = (int)Math.Min(options.GrpcMaxMessageBytes, int.MaxValue);
            // Answers are as large as the model makes them (REST sends them whole too).
            o.MaxSendMessageSize = null;
            // Exception text is for the log: clients get our plain messages only.
            o.EnableDetailedErrors = false;
        });
        services.AddSingleton(_ =>
        {
            var (state, repository) = built();
            return new InferenceService(state, repository);
        });
    }

    public static void Map(WebApplication app) => app.MapGrpcService<InferenceService>();
}
