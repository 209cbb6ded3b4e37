using Grpc.Core;
using Mlos.Core;
using Mlos.Smi.Abi;

namespace Mlos.Server.Grpc;

/// <summary>
/// Every gRPC call runs inside <see cref="Run{T}"/>: the failure becomes the status Triton's
/// clients expect (INVALID_ARGUMENT, NOT_FOUND, UNAVAILABLE, …) with the same plain message, log
/// line and counters a REST request gets (<see cref="Responses.Failure"/> is the one mapping).
/// </summary>
internal static class GrpcFailures
{
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    public static async ValueTask<T> Run<T, TArg>(ServerCallContext context, ServerState state, TArg arg, Func<ServerState, TArg, ValueTask<T>> call)
    {
        var http = context.GetHttpContext();
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        bool ok = false;
        try
        {
            var answer = await call(state, arg);
            ok = true;
            return answer;
        }
        // The client went away: nothing to answer, and not a bug of ours.
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested) { throw new RpcException(new Status(StatusCode.Cancelled, "the call was cancelled")); }
        catch (Exception e) when (e is not RpcException) { throw Status(http, state, e); }
        finally { Responses.Finish(http, state, start, ok); }
    }

    public static Task<T> Run<T>(ServerCallContext context, ServerState state, Func<T> call) =>
        Run(context, state, call, static (_, c) => ValueTask.FromResult(c())).AsTask();

    /// <summary>The failure as the RpcException the client receives, logged once.</summary>
    public static RpcException Status(HttpContext http, ServerState state, Exception e)
    {
        var (status, message) = Responses.Failure(http, state, e);
        return new RpcException(new Status(Code(e, status), Responses.Reported(http, state, status, message)));
    }

    /// <summary>Our status where the failure carries one (it says more than the HTTP code: 409 is both "exists" and "not loaded"), else the HTTP code's meaning.</summary>
    private static StatusCode Code(Exception e, int http) => e switch
    {
        MlosException { Status: SmiStatus.InvalidParam or SmiStatus.BufferTooSmall } => StatusCode.InvalidArgument,
        MlosException { Status: SmiStatus.NotFound } => StatusCode.NotFound,
        MlosException { Status: SmiStatus.AlreadyExists } => StatusCode.AlreadyExists,
        // Not loaded, unloading, a full queue: the request may succeed later.
        MlosException { Status: SmiStatus.InvalidState or SmiStatus.Busy } => StatusCode.Unavailable,
        MlosException { Status: SmiStatus.Timeout } => StatusCode.DeadlineExceeded,
        MlosException { Status: SmiStatus.NotSupported } => StatusCode.Unimplemented,
        _ => http switch
        {
            400 or 415 => StatusCode.InvalidArgument,
            401 => StatusCode.Unauthenticated,
            403 => StatusCode.PermissionDenied,
            404 => StatusCode.NotFound,
            409 => StatusCode.FailedPrecondition,
            413 => StatusCode.ResourceExhausted,
            503 => StatusCode.Unavailable,
            504 => StatusCode.DeadlineExceeded,
            _ => StatusCode.Internal,
        },
    };
}
