using System.Buffers;
using System.IO.Pipelines;

namespace Mlos.Server;

/// <summary>
/// Copies a large answer into the response pipe a slice at a time, flushing whenever a slice is
/// pending, so the pipe holds at most one slice however large the answer: a write without a flush
/// would buffer all of it a second time in Kestrel's memory.
/// </summary>
internal static class PipeSlices
{
    private const int SliceBytes = 64 * 1024;

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))]
    public static async ValueTask WriteAsync(PipeWriter pipe, NativeBytes bytes, CancellationToken aborted)
    {
        for (long sent = 0; sent < bytes.Length;)
        {
            int n = (int)Math.Min(SliceBytes, bytes.Length - sent);
            pipe.Write(bytes.Span(sent, n));
            sent += n;
            if (pipe.UnflushedBytes >= SliceBytes) await pipe.FlushAsync(aborted);
        }
    }
}
