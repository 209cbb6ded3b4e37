using Grpc.AspNetCore.Server.Model;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Mlos.Server.Grpc;

namespace Mlos.Server;

/// <summary>The gRPC services' registration: message limits from the options, and the services made from the server's state (ModelMesh's SPI with --modelmesh only).</summary>
internal static class GrpcEndpoint
{
    public static void AddTo(IServiceCollection services, ServerOptions options, Func<(ServerState State, RepositoryControl Repository, ModelMeshModels? ModelMesh)> built)
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
            var (state, repository, _) = built();
            return new InferenceService(state, repository);
        });
        if (!options.ModelMesh) return;
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IServiceMethodProvider<ModelMeshRuntime>, ModelMeshRuntimeMethods>());
        services.AddSingleton(_ =>
        {
            var (state, _, models) = built();
            return new ModelMeshRuntime(state, models!);
        });
    }

    public static void Map(WebApplication app, ServerOptions options)
    {
        app.MapGrpcService<InferenceService>();
        if (options.ModelMesh) app.MapGrpcService<ModelMeshRuntime>();
    }
}
