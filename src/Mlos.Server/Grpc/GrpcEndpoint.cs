using Grpc.AspNetCore.Server.Model;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Mlos.Server.Grpc;

namespace Mlos.Server;

/// <summary>The gRPC service's registration: message limits from the options, and the service made from the server's state.</summary>
internal static class GrpcEndpoint
{
    public static void AddTo(IServiceCollection services, ServerOptions options, Func<(ServerState State, RepositoryControl Repository)> built)
    {
        services.AddGrpc(o =>
        {
            o.MaxReceiveMessageSize = (int)Math.Min(options.GrpcMaxMessageBytes, int.MaxValue);
            // Answers are as large as the model makes them (REST sends them whole too).
            o.MaxSendMessageSize = null;
            // Exception text is for the log: clients get our plain messages only.
            o.EnableDetailedErrors = false;
        });
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IServiceMethodProvider<InferenceService>, InferenceServiceMethods>());
        services.AddSingleton(_ =>
        {
            var (state, repository) = built();
            return new InferenceService(state, repository);
        });
    }

    public static void Map(WebApplication app) => app.MapGrpcService<InferenceService>();
}
