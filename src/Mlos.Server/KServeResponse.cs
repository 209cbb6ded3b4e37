using System.Buffers;
using System.Text.Json;
using Mlos.Core.Batching;
using Mlos.Core.Models;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Server;

/// <summary>
/// The v2 inference answer, written into the response pipe: a JSON header (outputs with their
/// values, or their <c>binary_data_size</c>), then binary outputs copied once from plugin memory.
/// <c>parameters</c> carries the request's <c>queue_time_us</c> and the <c>batch_size</c> it ran in.
/// When the request lists <c>"outputs"</c>, the core has answered with those only (see
/// <c>OutputSelection</c>): the plugin computed no others, or the core released them uncopied.
/// Large answers go out in slices, each flushed before the next is copied, so the response pipe
/// never holds more than a slice of them.
/// </summary>
internal static class KServeResponse
{
    private const string HeaderLength = "Inference-Header-Content-Length";

    /// <summary>Writes the header into the scratch and sets the status and headers; <see cref="SendAsync"/> sends it and the binary outputs.</summary>
    public static unsafe void Prepare(HttpResponse response, Model model, in KServeRequest request, ReadOnlySpan<SmiTensor> outputs,
        InferTiming timing, KServeScratch scratch)
    {
        var header = scratch.Header;
        header.Reset();
        var w = scratch.Writer;
        w.Reset(header);
        long binaryBytes = 0;
        bool anyBinary = false;
        w.WriteStartObject();
        w.WriteString("model_name"u8, model.Id);
        if (model.Version is not null) w.WriteString("model_version"u8, model.Version);
        if (request.Id is not null) w.WriteString("id"u8, request.Id);
        w.WriteStartObject("parameters"u8);
        w.WriteNumber("queue_time_us"u8, timing.QueueMicroseconds);
        w.WriteNumber("batch_size"u8, timing.BatchSize);
        w.WriteEndObject();
        w.WriteStartArray("outputs"u8);
        foreach (ref readonly var t in outputs)
        {
            var name = System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(t.Name);
            bool binary = request.WantsBinary(name, scratch);
            w.WriteStartObject();
            if (scratch.Requested(name) is { Region: not null } shared)
            {
                SharedMemoryTensors.Write(in t, in shared);
                MlosConvention.WriteTensor(w, in t, withData: false);
                w.WriteStartObject("parameters"u8);
                w.WriteString("shared_memory_region"u8, shared.RegionName);
                w.WriteNumber("shared_memory_byte_size"u8, (long)t.ByteSize);
                w.WriteEndObject();
            }
            else MlosConvention.WriteTensor(w, in t, withData: !binary);
            if (binary)
            {
                w.WriteStartObject("parameters"u8);
                w.WriteNumber("binary_data_size"u8, (long)t.ByteSize);
                w.WriteEndObject();
                binaryBytes += (long)t.ByteSize;
                anyBinary = true;
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
        w.Flush();

        response.StatusCode = 200;
        if (!anyBinary)
        {
            response.ContentType = "application/json";
            response.ContentLength = header.WrittenCount;
            return;
        }
        response.ContentType = "application/octet-stream";
        response.Headers[HeaderLength] = HeaderLengthText(header.WrittenCount);
        response.ContentLength = header.WrittenCount + binaryBytes;
    }

    /// <summary>Sends what <see cref="Prepare"/> made: the header, then each output the request asked for as binary.</summary>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))]
    public static async ValueTask SendAsync(HttpResponse response, KServeRequest request, KServeScratch scratch, CancellationToken aborted)
    {
        var pipe = response.BodyWriter;
        await PipeSlices.WriteAsync(pipe, scratch.Header.Written, aborted);
        for (int i = 0; i < scratch.WrittenOutputs.Length; i++)
        {
            if (WantsBinary(request, scratch, i)) await PipeSlices.WriteAsync(pipe, Output(scratch, i), aborted);
        }
        await pipe.FlushAsync(aborted);
    }

    private static unsafe NativeBytes Output(KServeScratch scratch, int i)
    {
        ref readonly var t = ref scratch.WrittenOutputs[i];
        return new NativeBytes((byte*)t.Data, (long)t.ByteSize);
    }

    private static unsafe bool WantsBinary(in KServeRequest request, KServeScratch scratch, int i)
    {
        var name = System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(scratch.WrittenOutputs[i].Name);
        return request.WantsBinary(name, scratch);
    }

    // Header lengths repeat from request to request: keep their text instead of formatting each time.
    private static readonly string?[] s_lengths = new string?[4096];

    private static string HeaderLengthText(int n)
    {
        if ((uint)n >= (uint)s_lengths.Length) return n.ToString();
        return s_lengths[n] ??= n.ToString();
    }
}
