using Google.Protobuf;
using Grpc.AspNetCore.Server.Model;
using Grpc.Core;
using Mlos.Server.Grpc.Protocol;

namespace Mlos.Server.Grpc;

/// <summary>
/// The method table of <c>inference.GRPCInferenceService</c>, written out instead of generated:
/// Grpc.Tools makes the messages only. Two reasons. A request that is not a valid protobuf
/// message must be the client's mistake (INVALID_ARGUMENT, as Triton answers it); the generated
/// marshallers let the parser's exception through, which Grpc.AspNetCore reports as UNKNOWN
/// ("Exception was thrown by handler"). And the generated binding is found and invoked through
/// reflection on the service type; here each method is a plain delegate, which NativeAOT needs no
/// metadata for and which costs nothing to map at start-up.
/// Method names and message types follow grpc_service.proto; a test calls every one of them
/// through stubs generated from that file, so a mismatch here fails there.
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
                Marshaller(ModelInferRequest.Parser), Marshaller(ModelInferResponse.Parser, m => m.Lease?.Dispose())),
            [], (s, r, c) => s.ModelInfer(r, c));
        context.AddDuplexStreamingMethod(
            new Method<ModelInferRequest, ModelStreamInferResponse>(MethodType.DuplexStreaming, ServiceName, "ModelStreamInfer",
                Marshaller(ModelInferRequest.Parser), Marshaller(ModelStreamInferResponse.Parser, m => m.InferResponse?.Lease?.Dispose())),
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
        context.AddUnaryMethod(new Method<TRequest, TResponse>(MethodType.Unary, ServiceName, name, Marshaller(parser), Marshaller(new MessageParser<TResponse>(() => new TResponse()))),
            [], invoke);

    /// <summary>
    /// Protobuf in and out; a message that does not parse is INVALID_ARGUMENT with the parser's
    /// reason. <paramref name="written"/> runs once a message is serialized: inference answers give
    /// back the outputs their raw contents wrap (<see cref="AnswerLease"/>).
    /// </summary>
    private static Marshaller<T> Marshaller<T>(MessageParser<T> parser, Action<T>? written = null) where T : class, IMessage<T> =>
        Marshallers.Create<T>(
            (message, context) =>
            {
                try
                {
                    context.SetPayloadLength(message.CalculateSize());
                    message.WriteTo(context.GetBufferWriter());
                    context.Complete();
                }
                finally { written?.Invoke(message); }
            },
            context =>
            {
                try { return parser.ParseFrom(context.PayloadAsReadOnlySequence()); }
                catch (InvalidProtocolBufferException e)
                {
                    throw new RpcException(new Status(StatusCode.InvalidArgument, $"the request is not a valid {typeof(T).Name} message: {e.Message}"));
                }
            });
}
