using System.Runtime.ExceptionServices;
using System.Threading.Channels;
using Grpc.Core;
using Mlos.Server.Grpc.Protocol;

namespace Mlos.Server.Grpc;

/// <summary>
/// ModelStreamInfer: each request starts as soon as it is read, up to <see cref="InFlight"/> per
/// stream, and answers are written in the order the requests came. A stream is then as fast as
/// its requests allowed in flight (the batcher merges them, as it merges separate calls), where
/// one request at a time left a stream at one model run per round trip. A failed request is an
/// answer with its error and the stream goes on. Every answer's memory (its lease) is given
/// back, written or not, however the stream ends.
/// </summary>
internal static class GrpcStream
{
    /// <summary>Requests of one stream started and waiting to be written (one more may be being written); the reader waits beyond it.</summary>
    public const int InFlight = 16;

    public static async Task Serve(ServerState state, IAsyncStreamReader<ModelInferRequest> requests, IServerStreamWriter<ModelStreamInferResponse> responses, ServerCallContext context)
    {
        var answers = Channel.CreateBounded<Task<ModelStreamInferResponse>>(new BoundedChannelOptions(InFlight) { SingleReader = true, SingleWriter = true });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
        var writer = WriteInOrder(answers.Reader, responses, stop);
        ExceptionDispatchInfo? failure = null;
        try
        {
            // Room first, then the request starts: an answer that has begun is always in the channel.
            while (await answers.Writer.WaitToWriteAsync(stop.Token) && await requests.MoveNext(stop.Token))
            {
                // On the thread pool: a request the batcher would run at once on this thread
                // would otherwise finish before the next one is even read.
                var request = requests.Current;
                answers.Writer.TryWrite(Task.Run(() => Answer(state, request, context))); // the only writer, and there is room
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested && !context.CancellationToken.IsCancellationRequested)
        {
            // The writer failed: its exception is the one to report.
        }
        catch (Exception e)
        {
            failure = ExceptionDispatchInfo.Capture(e); // a malformed message (INVALID_ARGUMENT), the client gone
        }
        finally { answers.Writer.Complete(); }
        try { await writer; }
        finally { await Drain(answers.Reader); }
        failure?.Throw();
    }

    /// <summary>The answer to one request; never throws (a failure is an answer with its message).</summary>
    private static async Task<ModelStreamInferResponse> Answer(ServerState state, ModelInferRequest request, ServerCallContext context)
    {
        try { return new ModelStreamInferResponse { InferResponse = await GrpcFailures.Run(context, state, (request, context), InferenceService.Infer) }; }
        catch (RpcException e)
        {
            return new ModelStreamInferResponse
            {
                ErrorMessage = e.Status.Detail,
                InferResponse = new ModelInferResponse { ModelName = request.ModelName, ModelVersion = request.ModelVersion, Id = request.Id },
            };
        }
    }

    private static async Task WriteInOrder(ChannelReader<Task<ModelStreamInferResponse>> answers, IServerStreamWriter<ModelStreamInferResponse> responses, CancellationTokenSource stop)
    {
        try
        {
            while (await answers.WaitToReadAsync())
                while (answers.TryRead(out var next))
                {
                    var answer = await next;
                    try { await responses.WriteAsync(answer, stop.Token); }
                    finally { answer.InferResponse?.Lease?.Dispose(); } // written (and given back by its marshaller) or not: never kept
                }
        }
        catch
        {
            stop.Cancel(); // the reader stops taking requests
            throw;
        }
    }

    /// <summary>Answers never written (the stream failed): each one's memory goes back once its request has finished.</summary>
    private static async Task Drain(ChannelReader<Task<ModelStreamInferResponse>> answers)
    {
        while (answers.TryRead(out var next))
        {
            (await next).InferResponse?.Lease?.Dispose();
        }
    }
}
