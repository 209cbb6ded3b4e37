using Google.Protobuf;
using Grpc.AspNetCore.Server.Model;
using Grpc.Core;
using Mlos.Server.Grpc.Protocol;

namespace Mlos.Server.Grpc;

/// <summary>
/// The method table of <c>inference.GRPCInferenceService</c>, bound as every service here is
/// (<see cref="GrpcBinding"/>). Method names and message types follow grpc_service.proto; a test
/// calls every one of them through stubs generated from that file, so a mismatch here fails there.
/// </summary>
internal sealed class InferenceServiceMethods : IServiceMethodProvider<InferenceService>
{
    public const string ServiceName = "inference.GRPCInferenceService";

    public void OnServiceMethodDiscovery(ServiceMethodProviderContext<InferenceService> context)
    {
        Unary<ServerLiveRequest, ServerLiveResponse>(context, "ServerLive", ServerLiveRequest.Parser, (s, r, c) => s.ServerLive(r, c));
        Unary<ServerReadyRequest, ServerReadyResponse>(context, "ServerReady", ServerReadyRequest.Parser, (s, r, c) => s.ServerReady(r, c));
        Unary<ModelReadyRequest, ModelReadyResponse>(context, "ModelReady", ModelReadyRequest.Parser, (s, r, c) => s.ModelReady(r, c));
        Unary<ServerMetadataRequest, ServerMetadataResponse>(context, "ServerMetadata", ServerMetadataRequest.Parser, (s, r, c) => s.ServerMetadata(r, c));
        Unary<ModelMetadataRequest, ModelMetadataResponse>(context, "ModelMetadata", ModelMetadataRequest.Parser, (s, r, c) => s.ModelMetadata(r, c));
        context.AddUnaryMethod(
            new Method<ModelInferRequest, ModelInferResponse>(MethodType.Unary, ServiceName, "ModelInfer",
                GrpcBinding.Marshaller(ModelInferRequest.Parser), GrpcBinding.Marshaller(ModelInferResponse.Parser, m => m.Lease?.Dispose())),
            [], (s, r, c) => s.ModelInfer(r, c));
        context.AddDuplexStreamingMethod(
            new Method<ModelInferRequest, ModelStreamInferResponse>(MethodType.DuplexStreaming, ServiceName, "ModelStreamInfer",
                GrpcBinding.Marshaller(ModelInferRequest.Parser), GrpcBinding.Marshaller(ModelStreamInferResponse.Parser, m => m.InferResponse?.Lease?.Dispose())),
            [], (s, requests, responses, c) => s.ModelStreamInfer(requests, responses, c));
        Unary<ModelConfigRequest, ModelConfigResponse>(context, "ModelConfig", ModelConfigRequest.Parser, (s, r, c) => s.ModelConfig(r, c));
        Unary<ModelStatisticsRequest, ModelStatisticsResponse>(context, "ModelStatistics", ModelStatisticsRequest.Parser, (s, r, c) => s.ModelStatistics(r, c));
        Unary<RepositoryIndexRequest, RepositoryIndexResponse>(context, "RepositoryIndex", RepositoryIndexRequest.Parser, (s, r, c) => s.RepositoryIndex(r, c));
        Unary<RepositoryModelLoadRequest, RepositoryModelLoadResponse>(context, "RepositoryModelLoad", RepositoryModelLoadRequest.Parser, (s, r, c) => s.RepositoryModelLoad(r, c));
        Unary<RepositoryModelUnloadRequest, RepositoryModelUnloadResponse>(context, "RepositoryModelUnload", RepositoryModelUnloadRequest.Parser, (s, r, c) => s.RepositoryModelUnload(r, c));
        Unary<SystemSharedMemoryStatusRequest, SystemSharedMemoryStatusResponse>(context, "SystemSharedMemoryStatus", SystemSharedMemoryStatusRequest.Parser, (s, r, c) => s.SystemSharedMemoryStatus(r, c));
        Unary<SystemSharedMemoryRegisterRequest, SystemSharedMemoryRegisterResponse>(context, "SystemSharedMemoryRegister", SystemSharedMemoryRegisterRequest.Parser, (s, r, c) => s.SystemSharedMemoryRegister(r, c));
        Unary<SystemSharedMemoryUnregisterRequest, SystemSharedMemoryUnregisterResponse>(context, "SystemSharedMemoryUnregister", SystemSharedMemoryUnregisterRequest.Parser, (s, r, c) => s.SystemSharedMemoryUnregister(r, c));
    }

    private static void Unary<TRequest, TResponse>(ServiceMethodProviderContext<InferenceService> context, string name, MessageParser<TRequest> parser,
        UnaryServerMethod<InferenceService, TRequest, TResponse> invoke)
        where TRequest : class, IMessage<TRequest> where TResponse : class, IMessage<TResponse>, new() =>
        GrpcBinding.Unary(context, ServiceName, name, parser, invoke);
}
