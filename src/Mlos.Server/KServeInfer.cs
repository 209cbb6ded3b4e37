using System.Buffers;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using Mlos.Core;
using Mlos.Core.Batching;
using Mlos.Core.Models;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Server;

/// <summary>
/// <c>POST /v2/models/{m}[/versions/{v}]/infer</c>: JSON tensors, and KServe's binary-data
/// extension (<c>Inference-Header-Content-Length</c>: a JSON header, then each input with
/// <c>"parameters":{"binary_data_size":n}</c> as raw bytes, in order).
///
/// Nothing is wasted: the body lands in the request's pooled scratch (native memory, given back
/// when large), the header is read with <see cref="Utf8JsonReader"/> (no document), binary inputs
/// are handed to the plugin in place inside the body, JSON <c>"data"</c> is decoded straight into
/// native memory, outputs come back in plugin memory and are copied once, slice by slice, into the
/// response's pipe, then released. A model with dynamic batching is awaited, not waited on: no
/// thread blocks while its batch forms.
/// </summary>
internal static class KServeInfer
{
    private const string HeaderLength = "Inference-Header-Content-Length";

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))]
    public static async ValueTask Handle(HttpContext http, ServerState state, string name, string? version)
    {
        var model = state.Core.GetModel(PathIds.Segment(http, name, 2), version);
        // Admitted before the body is read: --max-queue bounds the memory a model's requests hold
        // (bodies, decoded inputs), and an overloaded model refuses before reading anything.
        using var ticket = state.Admit(model.Id);
        // The tensors point into the body and the scratch (which holds both) while a batched request
        // waits: own the scratch until the answer is written.
        var scratch = KServeScratch.Rent();
        try
        {
            using var body = await RequestBody.ReadAsync(http, state.Options.MaxBodyBytes, scratch.Body);
            var request = Parse(http, body, scratch, state.SharedMemory);
            long start = Stopwatch.GetTimestamp();
            var timing = await Infer(state, model, request, scratch);
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds - timing.QueueMicroseconds / 1e6;
            ServerMetrics.Inference(model.Id, seconds, timing.QueueMicroseconds / 1e6, timing.BatchSize);
            KServeResponse.Prepare(http.Response, model, request, scratch.WrittenOutputs, timing, scratch);
            await KServeResponse.SendAsync(http.Response, request, scratch, http.RequestAborted);
        }
        finally
        {
            scratch.ReleaseOutputs();
            KServeScratch.Return(scratch);
        }
    }

    private static unsafe KServeRequest Parse(HttpContext http, in RequestBody body, KServeScratch scratch, SharedMemoryRegions regions)
    {
        int headerLength = body.Length;
        if (http.Request.Headers.TryGetValue(HeaderLength, out var h) &&
            (!int.TryParse(h.ToString(), out headerLength) || headerLength < 0 || headerLength > body.Length))
            throw new MlosException(SmiStatus.InvalidParam, $"{HeaderLength} {h} does not fit a body of {body.Length} bytes");
        return KServeRequest.Parse(body.Span, headerLength, body.Pointer, scratch, regions);
    }

    /// <summary>Through the model's batcher without holding this thread, or at once.</summary>
    private static unsafe ValueTask<InferTiming> Infer(ServerState state, Model model, in KServeRequest request, KServeScratch scratch)
    {
        *scratch.OutputCount = KServeScratch.MaxTensors;
        return state.Core.InferAsync(model, scratch.Inputs, (nuint)request.InputCount, scratch.Outputs, scratch.OutputCount, scratch.Selection);
    }
}
