using Grpc.AspNetCore.Server.Model;
using Mlos.Server.Grpc.ModelMesh;

namespace Mlos.Server.Grpc;

/// <summary>The method table of <see cref="ModelMeshRuntime"/>, bound as every service here is (<see cref="GrpcBinding"/>); the SPI's method names start in lower case.</summary>
internal sealed class ModelMeshRuntimeMethods : IServiceMethodProvider<ModelMeshRuntime>
{
    public void OnServiceMethodDiscovery(ServiceMethodProviderContext<ModelMeshRuntime> context)
    {
        const string s = ModelMeshRuntime.ServiceName;
        GrpcBinding.Unary<ModelMeshRuntime, LoadModelRequest, LoadModelResponse>(context, s, "loadModel", LoadModelRequest.Parser, (m, r, c) => m.LoadModel(r, c));
        GrpcBinding.Unary<ModelMeshRuntime, UnloadModelRequest, UnloadModelResponse>(context, s, "unloadModel", UnloadModelRequest.Parser, (m, r, c) => m.UnloadModel(r, c));
        GrpcBinding.Unary<ModelMeshRuntime, PredictModelSizeRequest, PredictModelSizeResponse>(context, s, "predictModelSize", PredictModelSizeRequest.Parser, (m, r, c) => m.PredictModelSize(r, c));
        GrpcBinding.Unary<ModelMeshRuntime, ModelSizeRequest, ModelSizeResponse>(context, s, "modelSize", ModelSizeRequest.Parser, (m, r, c) => m.ModelSize(r, c));
        GrpcBinding.Unary<ModelMeshRuntime, RuntimeStatusRequest, RuntimeStatusResponse>(context, s, "runtimeStatus", RuntimeStatusRequest.Parser, (m, r, c) => m.RuntimeStatus(r, c));
    }
}
