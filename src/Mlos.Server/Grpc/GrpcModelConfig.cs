using Mlos.Core.Models;
using Mlos.Server.Grpc.Protocol;
using Mlos.Smi.Abi;

namespace Mlos.Server.Grpc;

/// <summary>
/// A model as Triton's <c>ModelConfig</c>, the way Triton's clients and perf_analyzer read it:
/// with dynamic batching on, <c>max_batch_size</c> is the batcher's and the dims leave out the batch
/// dimension; otherwise <c>max_batch_size</c> is 0 and the dims are the model's whole shape.
/// </summary>
internal static class GrpcModelConfig
{
    public static ModelConfig Of(Model m)
    {
        var d = ModelDescription.Of(m, withInfo: false);
        var batching = m.ActiveBatching;
        var platform = ModelDescription.Platform(m);
        var config = new ModelConfig
        {
            Name = m.Id,
            Platform = platform,
            Backend = platform switch { "onnxruntime_onnx" => "onnxruntime", "pytorch_libtorch" => "pytorch", _ => m.Plugin.Id },
            MaxBatchSize = batching?.MaxBatchSize ?? 0,
            DefaultModelFilename = Path.GetFileName(m.Path) ?? "",
            VersionPolicy = new ModelVersionPolicy { Latest = new ModelVersionPolicy.Types.Latest { NumVersions = 1 } },
        };
        if (batching is not null)
            config.DynamicBatching = new ModelDynamicBatching { MaxQueueDelayMicroseconds = (ulong)batching.MaxQueueDelayMicroseconds };
        int skip = batching is null ? 0 : 1;
        foreach (var t in d.Inputs ?? [])
        {
            var input = new ModelInput { Name = t.Name, DataType = DataTypeOf(t.Dtype) };
            input.Dims.AddRange(t.Shape.Skip(skip));
            config.Input.Add(input);
        }
        foreach (var t in d.Outputs ?? [])
        {
            var output = new ModelOutput { Name = t.Name, DataType = DataTypeOf(t.Dtype) };
            output.Dims.AddRange(t.Shape.Skip(skip));
            config.Output.Add(output);
        }
        return config;
    }

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
