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
            try { return new ModelReadyResponse { Ready = Model(Target(context, request.Name, request.Version)).IsReady }; }
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
            var model = Model(Target(context, request.Name, request.Version));
            var d = ModelDescription.Of(model, withInfo: false);
            var answer = new ModelMetadataResponse { Name = model.Id, Platform = ModelDescription.Platform(model) };
            foreach (var v in state.Core.GetVersions(model.Id).All.Reverse()) answer.Versions.Add(v.ServedVersion);
            foreach (var t in d.Inputs ?? []) answer.Inputs.Add(Metadata(t));
            foreach (var t in d.Outputs ?? []) answer.Outputs.Add(Metadata(t));
            return answer;
        });

    public async Task<ModelInferResponse> ModelInfer(ModelInferRequest request, ServerCallContext context)
    {
        var response = await GrpcFailures.Run(context, state, (request, context), Infer);
        // Serializing the answer gives its memory back; should it never be written, the call's end does.
        if (response.Lease is { } lease) context.GetHttpContext().Response.RegisterForDispose(lease);
        return response;
    }

    public Task ModelStreamInfer(IAsyncStreamReader<ModelInferRequest> requests, IServerStreamWriter<ModelStreamInferResponse> responses, ServerCallContext context) =>
        GrpcStream.Serve(state, requests, responses, context);

    public Task<ModelConfigResponse> ModelConfig(ModelConfigRequest request, ServerCallContext context) =>
        GrpcFailures.Run(context, state, () => new ModelConfigResponse { Config = Triton.EffectiveConfig.Of(Model(Target(context, request.Name, request.Version)), state) });

    public Task<ModelStatisticsResponse> ModelStatistics(ModelStatisticsRequest request, ServerCallContext context) =>
        GrpcFailures.Run(context, state, () =>
        {
            var (name, version) = Target(context, request.Name, request.Version);
            IEnumerable<Model> models = name.Length == 0
                ? version.Length == 0 ? state.Core.Models : throw new MlosException(SmiStatus.InvalidParam, "a version needs a model name")
                : version.Length == 0 ? state.Core.GetVersions(Named(name)).All : [Model((name, version))];
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
    /// The model a call is for: with <c>--modelmesh</c>, the id in the header ModelMesh forwards a
    /// request with (<c>mm-model-id</c>, or <c>mm-model-id-bin</c> for an id that is not ASCII)
    /// wins over the request's own name, and the request's version is not looked at (a ModelMesh
    /// model has one; a NOT_FOUND would tell ModelMesh the model left this runtime); otherwise the
    /// request's name and version.
    /// </summary>
    private (string Name, string Version) Target(ServerCallContext context, string name, string version) =>
        ModelMeshId(state, context) is { } id ? (id, "") : (name, version);

    /// <summary>
    /// One inference call (ModelInfer, each request of a stream), routed first: inside
    /// <see cref="GrpcFailures.Run{T, TArg}"/>, so that a bad routing header fails as the client's mistake.
    /// </summary>
    public static ValueTask<ModelInferResponse> Infer(ServerState state, (ModelInferRequest Request, ServerCallContext Context) call)
    {
        Route(state, call.Context, call.Request);
        return GrpcInfer.Run(state, call.Request);
    }

    /// <summary><see cref="Target"/> for an inference request, which carries its model in its own fields on to the core.</summary>
    private static void Route(ServerState state, ServerCallContext context, ModelInferRequest request)
    {
        if (ModelMeshId(state, context) is not { } id) return;
        request.ModelName = id;
        request.ModelVersion = "";
    }

    private static string? ModelMeshId(ServerState state, ServerCallContext context)
    {
        if (!state.Options.ModelMesh) return null;
        foreach (var entry in context.RequestHeaders)
        {
            if (entry.Key == "mm-model-id" && entry.Value.Length > 0) return entry.Value;
            if (entry.Key == "mm-model-id-bin" && entry.ValueBytes.Length > 0) return Utf8Header(entry.ValueBytes);
        }
        return null;
    }

    private static readonly System.Text.UTF8Encoding s_strictUtf8 = new(false, throwOnInvalidBytes: true);

    private static string Utf8Header(byte[] value)
    {
        try { return s_strictUtf8.GetString(value); }
        catch (System.Text.DecoderFallbackException) { throw new MlosException(SmiStatus.InvalidParam, "the mm-model-id-bin header is not UTF-8"); }
    }

    private Model Model((string Name, string Version) target) => state.Core.GetModel(Named(target.Name), target.Version.Length == 0 ? null : target.Version);

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
