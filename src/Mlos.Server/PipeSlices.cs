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

    /// <summary>Copies <paramref name="bytes"/> into the pipe; the caller flushes what is left unflushed.</summary>
    public static ValueTask WriteAsync(PipeWriter pipe, NativeBytes bytes, CancellationToken aborted)
    {
        if (bytes.Length > SliceBytes) return WriteSlicedAsync(pipe, bytes, aborted);
        pipe.Write(bytes.Span(0, (int)bytes.Length)); // the common small answer: no state machine
        return default;
    }

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))]
    private static async ValueTask WriteSlicedAsync(PipeWriter pipe, NativeBytes bytes, CancellationToken aborted)
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
