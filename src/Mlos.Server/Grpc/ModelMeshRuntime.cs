using Grpc.Core;
using Mlos.Server.Grpc.ModelMesh;

namespace Mlos.Server.Grpc;

/// <summary>
/// <c>mmesh.ModelRuntime</c>, ModelMesh's model-runtime SPI (<c>--modelmesh</c>), over
/// <see cref="ModelMeshModels"/>. ModelMesh then forwards inference to
/// <c>inference.GRPCInferenceService</c> on the same port, naming the model in the
/// <c>mm-model-id</c> header (<see cref="InferenceService.Infer"/>) and, as runtimeStatus asks
/// it to, in the request's model name field too. Loads and unloads are admin calls
/// (<see cref="AdminGate"/>): ModelMesh calls from its own container in the pod, on loopback.
/// </summary>
internal sealed class ModelMeshRuntime(ServerState state, ModelMeshModels models)
{
    public const string ServiceName = "mmesh.ModelRuntime";

    /// <summary>The inference methods ModelMesh may forward, each with the model name's field number in its request (field 1 of each).</summary>
    private static readonly string[] Forwarded = ["ModelInfer", "ModelMetadata", "ModelReady"];

    /// <summary>Model loads ModelMesh may run at once, and how long one may take (libtorch's first load on a cold cache takes seconds).</summary>
    private const uint LoadingConcurrency = 2, LoadingTimeoutMs = 90_000;

    public Task<LoadModelResponse> LoadModel(LoadModelRequest request, ServerCallContext context) =>
        GrpcFailures.Run(context, state, () =>
        {
            AdminGate.RequireCaller(context.GetHttpContext(), state);
            return new LoadModelResponse { SizeInBytes = models.Load(request.ModelId, request.ModelType, request.ModelPath, context.CancellationToken) };
        });

    public Task<UnloadModelResponse> UnloadModel(UnloadModelRequest request, ServerCallContext context) =>
        GrpcFailures.Run(context, state, () =>
        {
            AdminGate.RequireCaller(context.GetHttpContext(), state);
            models.Unload(request.ModelId);
            return new UnloadModelResponse();
        });

    public Task<PredictModelSizeResponse> PredictModelSize(PredictModelSizeRequest request, ServerCallContext context) =>
        GrpcFailures.Run(context, state, () => new PredictModelSizeResponse { SizeInBytes = models.Predict(request.ModelPath, request.ModelKey) });

    public Task<ModelSizeResponse> ModelSize(ModelSizeRequest request, ServerCallContext context) =>
        GrpcFailures.Run(context, state, () => new ModelSizeResponse { SizeInBytes = models.Size(request.ModelId) });

    /// <summary>
    /// STARTING until the start-up models are in; then every model ModelMesh placed earlier is
    /// purged (its container restarted and forgot them) and the answer is READY, or FAILING while
    /// one of them cannot be unloaded yet (ModelMesh asks again).
    /// </summary>
    public Task<RuntimeStatusResponse> RuntimeStatus(RuntimeStatusRequest request, ServerCallContext context) =>
        GrpcFailures.Run(context, state, () =>
        {
            if (!state.Started) return new RuntimeStatusResponse { Status = RuntimeStatusResponse.Types.Status.Starting };
            AdminGate.RequireCaller(context.GetHttpContext(), state);
            var (purged, failed) = models.Purge();
            if (purged > 0) state.Log.Admin($"ModelMesh asked for the runtime status: {purged} model(s) it had placed were unloaded");
            if (failed.Count > 0)
            {
                state.Log.Warn($"ModelMesh asked for the runtime status: not ready, {failed.Count} model(s) it had placed could not be unloaded yet: {string.Join("; ", failed)}");
                return new RuntimeStatusResponse { Status = RuntimeStatusResponse.Types.Status.Failing };
            }
            var answer = new RuntimeStatusResponse
            {
                Status = RuntimeStatusResponse.Types.Status.Ready,
                CapacityInBytes = models.Capacity(),
                MaxLoadingConcurrency = LoadingConcurrency,
                ModelLoadingTimeoutMs = LoadingTimeoutMs,
                DefaultModelSizeInBytes = ModelMeshModels.DefaultModelBytes,
                RuntimeVersion = MlosRoutes.Version,
            };
            foreach (var method in Forwarded)
            {
                var info = new RuntimeStatusResponse.Types.MethodInfo();
                info.IdInjectionPath.Add(1);
                answer.MethodInfos.Add($"{InferenceServiceMethods.ServiceName}/{method}", info);
            }
            return answer;
        });
}
