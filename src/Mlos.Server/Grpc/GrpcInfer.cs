using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Google.Protobuf;
using Mlos.Core.Batching;
using Mlos.Core.Models;
using Mlos.Server.Grpc.Protocol;
using Mlos.Smi.Abi;
using static Mlos.Server.Grpc.Protocol.ModelInferResponse.Types;

namespace Mlos.Server.Grpc;

/// <summary>
/// ModelInfer (and each request of ModelStreamInfer): the same admission, scratch, core call,
/// metrics and requested-output rules as the REST door (<see cref="KServeInfer"/>). Outputs go
/// back as raw_output_contents, one per output in the order of outputs (as Triton answers), with
/// the request's <c>queue_time_us</c> and <c>batch_size</c> as response parameters. The raw
/// contents wrap the outputs' memory; the answer's <see cref="ModelInferResponse.Lease"/> holds it
/// until the message is written (for 12 MB of outputs a copy cost as much as the whole call).
/// </summary>
internal static class GrpcInfer
{
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    public static async ValueTask<ModelInferResponse> Run(ServerState state, ModelInferRequest request)
    {
        var model = state.Core.GetModel(InferenceService.Named(request.ModelName), request.ModelVersion.Length == 0 ? null : request.ModelVersion);
        using var ticket = state.Admit(model.Id);
        var scratch = KServeScratch.Rent();
        var lease = new AnswerLease(scratch);
        try
        {
            int inputs = GrpcInputs.Place(request, scratch, state.SharedMemory);
            long start = Stopwatch.GetTimestamp();
            var timing = await Infer(state, model, inputs, scratch);
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds - timing.QueueMicroseconds / 1e6;
            ServerMetrics.Inference(model.Id, seconds, timing.QueueMicroseconds / 1e6, timing.BatchSize);
            var response = Answer(model, request, scratch, timing);
            response.Lease = lease;
            return response;
        }
        catch
        {
            lease.Dispose();
            throw;
        }
    }

    private static unsafe ValueTask<InferTiming> Infer(ServerState state, Model model, int inputs, KServeScratch scratch)
    {
        *scratch.OutputCount = KServeScratch.MaxTensors;
        return state.Core.InferAsync(model, scratch.Inputs, (nuint)inputs, scratch.Outputs, scratch.OutputCount, scratch.Selection);
    }

    private static unsafe ModelInferResponse Answer(Model model, ModelInferRequest request, KServeScratch scratch, InferTiming timing)
    {
        var outputs = scratch.WrittenOutputs;
        var response = new ModelInferResponse { ModelName = model.Id, ModelVersion = model.ServedVersion, Id = request.Id };
        response.Parameters.Add("queue_time_us", new InferParameter { Int64Param = timing.QueueMicroseconds });
        response.Parameters.Add("batch_size", new InferParameter { Int64Param = timing.BatchSize });
        foreach (ref readonly var t in outputs)
        {
            var name = MemoryMarshal.CreateReadOnlySpanFromNullTerminated(t.Name);
            var tensor = new InferOutputTensor { Name = Encoding.UTF8.GetString(name), Datatype = SmiDtypes.Name(t.Dtype) };
            foreach (var d in t.Dims) tensor.Shape.Add(d);
            response.Outputs.Add(tensor);
            if (scratch.Requested(name) is { Region: not null } shared)
            {
                // In its region; an empty raw entry keeps raw_output_contents in step with outputs.
                SharedMemoryTensors.Write(in t, in shared);
                tensor.Parameters.Add("shared_memory_region", new InferParameter { StringParam = shared.RegionName });
                tensor.Parameters.Add("shared_memory_byte_size", new InferParameter { Int64Param = (long)t.ByteSize });
                response.RawOutputContents.Add(ByteString.Empty);
                continue;
            }
            if (t.ByteSize > int.MaxValue)
                throw new global::Grpc.Core.RpcException(new global::Grpc.Core.Status(global::Grpc.Core.StatusCode.ResourceExhausted,
                    $"output '{tensor.Name}' has {t.ByteSize} bytes, more than one gRPC message can carry (ask for it over REST, or into shared memory)"));
            // No copy: the bytes stay where the model put them until the message is serialized (AnswerLease).
            response.RawOutputContents.Add(UnsafeByteOperations.UnsafeWrap(new Smi.Sdk.NativeMemoryManager((byte*)t.Data, (int)t.ByteSize).Memory));
        }
        return response;
    }
}
