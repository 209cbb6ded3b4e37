using Grpc.Core;
using Mlos.Core;
using Mlos.Core.Models;
using Mlos.Server.Grpc.Protocol;
using Mlos.Smi.Abi;

namespace Mlos.Server.Grpc;

/// <summary>
/// <c>inference.GRPCInferenceService</c>: the Open Inference Protocol over gRPC, answered from the
/// same registry, statistics and repository as the REST routes. Every call goes through
/// <see cref="GrpcFailures"/>, so failures carry Triton's status codes and plain messages. Its
/// methods are bound by <see cref="InferenceServiceMethods"/>.
/// </summary>
internal sealed class InferenceService(ServerState state, RepositoryControl repository)
{
    public Task<ServerLiveResponse> ServerLive(ServerLiveRequest request, ServerCallContext context) =>
        GrpcFailures.Run(context, state, () => new ServerLiveResponse { Live = true });

    public Task<ServerReadyResponse> ServerReady(ServerReadyRequest request, ServerCallContext context) =>
        GrpcFailures.Run(context, state, () => new ServerReadyResponse { Ready = state.Started });

    /// <summary>As Triton answers it: a model or version it does not have is not ready (not an error).</summary>
    public Task<ModelReadyResponse> ModelReady(ModelReadyRequest request, ServerCallContext context) =>
        GrpcFailures.Run(context, state, () =>
        {
            try { return new ModelReadyResponse { Ready = Model(Routed(state, context, request.Name), request.Version).IsReady }; }
            catch (MlosException e) when (e.Status == SmiStatus.NotFound) { return new ModelReadyResponse { Ready = false }; }
        });

    public Task<ServerMetadataResponse> ServerMetadata(ServerMetadataRequest request, ServerCallContext context) =>
        GrpcFailures.Run(context, state, () =>
        {
            var answer = new ServerMetadataResponse { Name = KServeRoutes.ServerName, Version = MlosRoutes.Version };
            answer.Extensions.AddRange(KServeRoutes.Extensions(state.Options));
            return answer;
        });

    public Task<ModelMetadataResponse> ModelMetadata(ModelMetadataRequest request, ServerCallContext context) =>
        GrpcFailures.Run(context, state, () =>
        {
            var model = Model(Routed(state, context, request.Name), request.Version);
            var d = ModelDescription.Of(model, withInfo: false);
            var answer = new ModelMetadataResponse { Name = model.Id, Platform = ModelDescription.Platform(model) };
            foreach (var v in state.Core.GetVersions(model.Id).All.Reverse()) answer.Versions.Add(v.ServedVersion);
            foreach (var t in d.Inputs ?? []) answer.Inputs.Add(Metadata(t));
            foreach (var t in d.Outputs ?? []) answer.Outputs.Add(Metadata(t));
            return answer;
        });

    public async Task<ModelInferResponse> ModelInfer(ModelInferRequest request, ServerCallContext context)
    {
        request.ModelName = Routed(state, context, request.ModelName);
        var response = await GrpcFailures.Run(context, state, request, GrpcInfer.Run);
        // Serializing the answer gives its memory back; should it never be written, the call's end does.
        if (response.Lease is { } lease) context.GetHttpContext().Response.RegisterForDispose(lease);
        return response;
    }

    public Task ModelStreamInfer(IAsyncStreamReader<ModelInferRequest> requests, IServerStreamWriter<ModelStreamInferResponse> responses, ServerCallContext context) =>
        GrpcStream.Serve(state, requests, responses, context);

    public Task<ModelConfigResponse> ModelConfig(ModelConfigRequest request, ServerCallContext context) =>
        GrpcFailures.Run(context, state, () => new ModelConfigResponse { Config = Triton.EffectiveConfig.Of(Model(Routed(state, context, request.Name), request.Version), state) });

    public Task<ModelStatisticsResponse> ModelStatistics(ModelStatisticsRequest request, ServerCallContext context) =>
        GrpcFailures.Run(context, state, () =>
        {
            IEnumerable<Model> models = request.Name.Length == 0
                ? request.Version.Length == 0 ? state.Core.Models : throw new MlosException(SmiStatus.InvalidParam, "a version needs a model name")
                : request.Version.Length == 0 ? state.Core.GetVersions(Named(request.Name)).All : [Model(request.Name, request.Version)];
            var answer = new ModelStatisticsResponse();
            foreach (var m in models) answer.ModelStats.Add(GrpcStatistics.Of(m));
            return answer;
        });

    public Task<RepositoryIndexResponse> RepositoryIndex(RepositoryIndexRequest request, ServerCallContext context) =>
        GrpcFailures.Run(context, state, () =>
        {
            var answer = new RepositoryIndexResponse();
            foreach (var e in repository.Index(request.Ready))
                answer.Models.Add(new RepositoryIndexResponse.Types.ModelIndex { Name = e.Name, Version = e.Version ?? "", State = e.Ready ? "READY" : "UNAVAILABLE" });
            return answer;
        });

    public Task<RepositoryModelLoadResponse> RepositoryModelLoad(RepositoryModelLoadRequest request, ServerCallContext context) =>
        GrpcFailures.Run(context, state, () =>
        {
            AdminGate.RequireCaller(context.GetHttpContext(), state);
            NoParameters(request.Parameters.Keys, "load");
            repository.Load(Named(request.ModelName));
            return new RepositoryModelLoadResponse();
        });

    public Task<RepositoryModelUnloadResponse> RepositoryModelUnload(RepositoryModelUnloadRequest request, ServerCallContext context) =>
        GrpcFailures.Run(context, state, () =>
        {
            AdminGate.RequireCaller(context.GetHttpContext(), state);
            // Triton's unload_dependents concerns ensembles, which this server has none of.
            NoParameters(request.Parameters.Keys.Where(k => k != "unload_dependents"), "unload");
            repository.Unload(Named(request.ModelName));
            return new RepositoryModelUnloadResponse();
        });

    public Task<SystemSharedMemoryStatusResponse> SystemSharedMemoryStatus(SystemSharedMemoryStatusRequest request, ServerCallContext context) =>
        GrpcFailures.Run(context, state, () =>
        {
            var answer = new SystemSharedMemoryStatusResponse();
            foreach (var r in state.SharedMemory.Status(request.Name))
                answer.Regions.Add(r.Name, new SystemSharedMemoryStatusResponse.Types.RegionStatus { Name = r.Name, Key = r.Key, Offset = r.Offset, ByteSize = r.ByteSize });
            return answer;
        });

    public Task<SystemSharedMemoryRegisterResponse> SystemSharedMemoryRegister(SystemSharedMemoryRegisterRequest request, ServerCallContext context) =>
        GrpcFailures.Run(context, state, () =>
        {
            AdminGate.RequireCaller(context.GetHttpContext(), state);
            SharedMemoryRoutes.Register(state, request.Name, request.Key, request.Offset, request.ByteSize);
            return new SystemSharedMemoryRegisterResponse();
        });

    public Task<SystemSharedMemoryUnregisterResponse> SystemSharedMemoryUnregister(SystemSharedMemoryUnregisterRequest request, ServerCallContext context) =>
        GrpcFailures.Run(context, state, () =>
        {
            AdminGate.RequireCaller(context.GetHttpContext(), state);
            SharedMemoryRoutes.Unregister(state, request.Name);
            return new SystemSharedMemoryUnregisterResponse();
        });

    /// <summary>
    /// The model a call is for: with <c>--modelmesh</c>, the <c>mm-model-id</c> header ModelMesh
    /// forwards a request with wins over the request's own name (which names ModelMesh's model, or
    /// holds the id it injected); otherwise the request's name.
    /// </summary>
    public static string Routed(ServerState state, ServerCallContext context, string name) =>
        state.Options.ModelMesh && context.RequestHeaders.GetValue(ModelIdHeader) is { Length: > 0 } id ? id : name;

    public const string ModelIdHeader = "mm-model-id";

    private Model Model(string name, string version) => state.Core.GetModel(Named(name), version.Length == 0 ? null : version);

    public static string Named(string name) =>
        name.Length > 0 ? name : throw new MlosException(SmiStatus.InvalidParam, "the request names no model");

    private static void NoParameters(IEnumerable<string> keys, string action)
    {
        if (keys.FirstOrDefault() is { } key)
            throw new MlosException(SmiStatus.NotSupported, $"{action} parameter '{key}' is not supported (models load from their repository folder as they are)");
    }

    private static ModelMetadataResponse.Types.TensorMetadata Metadata(TensorDescription t)
    {
        var m = new ModelMetadataResponse.Types.TensorMetadata { Name = t.Name, Datatype = SmiDtypes.Name(t.Dtype) };
        m.Shape.AddRange(t.Shape);
        return m;
    }
}
