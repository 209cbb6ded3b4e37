using Mlos.Core.Models;
using Mlos.Server.Grpc.Protocol;
using Mlos.Smi.Abi;

namespace Mlos.Server.Triton;

/// <summary>
/// A model's complete effective config as Triton's <c>ModelConfig</c> (Triton's auto-complete):
/// what its config.pbtxt says where it says it, and what the loaded model and the core decided
/// for the rest. Inputs and outputs the config leaves out come from the model; with a batch
/// dimension (max_batch_size > 0) their dims leave it out. One builder for the gRPC ModelConfig
/// RPC and the REST config route (<see cref="ModelConfigJson"/>), the way Triton's clients and
/// perf_analyzer read them.
/// </summary>
internal static class EffectiveConfig
{
    /// <summary>The effective config of <paramref name="m"/>, with its config.pbtxt's when the repository read one.</summary>
    public static ModelConfig Of(Model m, ServerState state) => Of(m, state.ModelConfigs.GetValueOrDefault(m.Id));

    public static ModelConfig Of(Model m, TritonModelConfig? declared)
    {
        var platform = ModelDescription.Platform(m);
        return Build(m.Id, declared, ModelDescription.Of(m, withInfo: false), m.ActiveBatching, platform,
            declared?.Backend ?? platform switch { "onnxruntime_onnx" => "onnxruntime", "pytorch_libtorch" => "pytorch", _ => m.Plugin.Id },
            m.Instances, Path.GetFileName(m.Path));
    }

    /// <summary>
    /// The config as its file declares it, before any model exists: what Triton's Python backend
    /// hands a <c>TritonPythonModel</c> (<c>args["model_config"]</c>), whose file is the model.
    /// </summary>
    public static ModelConfig Declared(string name, TritonModelConfig declared, string backend, string file) =>
        Build(name, declared, null, null, "", backend, TritonModelFolder.Instances(declared), file);

    private static ModelConfig Build(string name, TritonModelConfig? declared, ModelDescription? d, Core.Batching.BatchingOptions? batching,
        string platform, string backend, int instances, string? file)
    {
        int maxBatch = declared?.MaxBatchSize ?? batching?.MaxBatchSize ?? 0;
        var config = new ModelConfig
        {
            Name = name,
            Platform = platform,
            Backend = backend,
            MaxBatchSize = maxBatch,
            DefaultModelFilename = declared?.DefaultModelFilename ?? file ?? "",
            VersionPolicy = Policy(declared?.Versions ?? new VersionPolicy.Latest(1)),
        };
        if (batching is not null)
        {
            config.DynamicBatching = new ModelDynamicBatching
            {
                MaxQueueDelayMicroseconds = (ulong)batching.MaxQueueDelayMicroseconds,
                PreserveOrdering = declared?.DynamicBatching?.PreserveOrdering ?? false,
            };
            config.DynamicBatching.PreferredBatchSize.AddRange(batching.PreferredBatchSizes);
        }
        int skip = maxBatch > 0 ? 1 : 0;
        foreach (var t in Tensors(declared?.Inputs, d?.Inputs, skip))
        {
            var input = new ModelInput { Name = t.Name, DataType = DataTypeOf(t.Dtype), Optional = t.Optional };
            input.Dims.AddRange(t.Dims ?? []);
            if (t.Reshape is { } r) input.Reshape = Reshape(r);
            config.Input.Add(input);
        }
        foreach (var t in Tensors(declared?.Outputs, d?.Outputs, skip))
        {
            var output = new ModelOutput { Name = t.Name, DataType = DataTypeOf(t.Dtype) };
            output.Dims.AddRange(t.Dims ?? []);
            if (t.Reshape is { } r) output.Reshape = Reshape(r);
            config.Output.Add(output);
        }
        var groups = declared?.InstanceGroups is { Count: > 0 } given ? given : [new InstanceGroupConfig(null, instances, InstanceKind.Cpu, [])];
        foreach (var (g, i) in groups.Select((g, i) => (g, i)))
        {
            var group = new ModelInstanceGroup { Name = g.Name ?? $"{name}_{i}", Count = g.Count, Kind = KindOf(g.Kind) };
            group.Gpus.AddRange(g.Gpus);
            config.InstanceGroup.Add(group);
        }
        foreach (var (key, value) in declared?.Parameters ?? [])
            config.Parameters[key] = new ModelParameter { StringValue = value };
        foreach (var w in declared?.Warmups ?? [])
        {
            var warmup = new ModelWarmup { Name = w.Name, BatchSize = (uint)w.BatchSize, Count = (uint)w.Count };
            foreach (var input in w.Inputs)
            {
                var x = new ModelWarmup.Types.Input { DataType = DataTypeOf(input.Dtype) };
                x.Dims.AddRange(input.Dims);
                switch (input.Data)
                {
                    case WarmupData.Zero: x.ZeroData = true; break;
                    case WarmupData.Random: x.RandomData = true; break;
                    default: x.InputDataFile = input.File!; break;
                }
                warmup.Inputs[input.Name] = x;
            }
            config.ModelWarmup.Add(warmup);
        }
        return config;
    }

    /// <summary>The declared tensors, their dtype and dims filled in from the model where left out; or the model's own.</summary>
    private static IEnumerable<TensorConfig> Tensors(IReadOnlyList<TensorConfig>? declared, TensorDescription[]? model, int skip)
    {
        if (declared is { Count: > 0 })
            return declared.Select(t => model?.FirstOrDefault(x => x.Name == t.Name) is { } found
                ? t with { Dtype = t.Dtype == SmiDtype.Invalid ? found.Dtype : t.Dtype, Dims = t.Dims ?? found.Shape.Skip(skip).ToArray() }
                : t);
        return (model ?? []).Select(t => new TensorConfig(t.Name, t.Dtype, t.Shape.Skip(skip).ToArray(), null, false));
    }

    private static ModelTensorReshape Reshape(long[] shape)
    {
        var r = new ModelTensorReshape();
        r.Shape.AddRange(shape);
        return r;
    }

    private static ModelVersionPolicy Policy(VersionPolicy p) => p switch
    {
        VersionPolicy.Latest l => new ModelVersionPolicy { Latest = new ModelVersionPolicy.Types.Latest { NumVersions = (uint)l.NumVersions } },
        VersionPolicy.All => new ModelVersionPolicy { All = new ModelVersionPolicy.Types.All() },
        VersionPolicy.Specific s => new ModelVersionPolicy { Specific = new ModelVersionPolicy.Types.Specific { Versions = { s.Versions } } },
        _ => new ModelVersionPolicy(),
    };

    private static ModelInstanceGroup.Types.Kind KindOf(InstanceKind k) => k switch
    {
        InstanceKind.Gpu => ModelInstanceGroup.Types.Kind.Gpu,
        InstanceKind.Cpu => ModelInstanceGroup.Types.Kind.Cpu,
        InstanceKind.Model => ModelInstanceGroup.Types.Kind.Model,
        _ => ModelInstanceGroup.Types.Kind.Auto,
    };

    /// <summary>Triton's enum, whose order differs from ours after FP64 (its TYPE_STRING is our BYTES).</summary>
    public static DataType DataTypeOf(SmiDtype t) => t switch
    {
        SmiDtype.Bool => DataType.TypeBool,
        SmiDtype.UInt8 => DataType.TypeUint8,
        SmiDtype.UInt16 => DataType.TypeUint16,
        SmiDtype.UInt32 => DataType.TypeUint32,
        SmiDtype.UInt64 => DataType.TypeUint64,
        SmiDtype.Int8 => DataType.TypeInt8,
        SmiDtype.Int16 => DataType.TypeInt16,
        SmiDtype.Int32 => DataType.TypeInt32,
        SmiDtype.Int64 => DataType.TypeInt64,
        SmiDtype.Fp16 => DataType.TypeFp16,
        SmiDtype.Fp32 => DataType.TypeFp32,
        SmiDtype.Fp64 => DataType.TypeFp64,
        SmiDtype.Bf16 => DataType.TypeBf16,
        SmiDtype.Bytes => DataType.TypeString,
        _ => DataType.TypeInvalid,
    };
}
