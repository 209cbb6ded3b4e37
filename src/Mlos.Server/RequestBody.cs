using Mlos.Smi.Sdk;

namespace Mlos.Server;

/// <summary>
/// A request body read whole into native memory (bounded by the body size limit); dispose to give
/// it back. Native, not pooled arrays: one 64 MB request must not leave a 64 MB array in a pool,
/// or on a managed heap the GC may keep committed, after it is answered. Pages that are never
/// written cost no RSS, so sizing from Content-Length up front is cheap.
/// </summary>
internal readonly struct RequestBody(NativeBuffer buffer, bool owned) : IDisposable
{
    public unsafe byte* Pointer => buffer.Pointer;
    public int Length => (int)buffer.Length;
    public unsafe ReadOnlySpan<byte> Span => new(buffer.Pointer, Length);

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    /// <param name="reuse">A buffer to read into (emptied first) that the caller keeps; null: a new one this body owns.</param>
    public static async ValueTask<RequestBody> ReadAsync(HttpContext http, long maxBytes, NativeBuffer? reuse = null)
    {
        long? declared = http.Request.ContentLength;
        if (declared > maxBytes) throw TooLarge(maxBytes);
        var buffer = reuse ?? new NativeBuffer((nuint)Math.Clamp(declared ?? 4096, 1, maxBytes));
        buffer.Clear();
        if (declared is > 0) Expect(buffer, (nuint)declared.Value);
        var reader = http.Request.BodyReader;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(http.RequestAborted);
                foreach (var segment in result.Buffer)
                {
                    if ((long)buffer.Length + segment.Length > maxBytes) throw TooLarge(maxBytes);
                    Append(buffer, segment.Span);
                }
                reader.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted) break;
            }
            return new RequestBody(buffer, owned: reuse is null);
        }
        catch (Exception e)
        {
            if (reuse is null) buffer.Dispose();
            if (e is IOException io and not BadHttpRequestException && !http.RequestAborted.IsCancellationRequested) throw Malformed(io);
            throw;
        }
    }

    /// <summary>Room for a body of known length, taken once instead of grown into.</summary>
    private static unsafe void Expect(NativeBuffer buffer, nuint bytes) => buffer.Reserve(bytes);

    private static unsafe void Append(NativeBuffer buffer, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(new Span<byte>(buffer.Reserve((nuint)bytes.Length), bytes.Length));
        buffer.Advance((nuint)bytes.Length);
    }

    /// <summary>A body whose framing Kestrel could not read (a bad chunk size, a truncated chunk): the client's mistake.</summary>
    public static BadHttpRequestException Malformed(IOException e) => new($"the request body is malformed: {e.Message}", 400, e);

    private static BadHttpRequestException TooLarge(long maxBytes) => new($"request body larger than {maxBytes >> 20} MB", 413);

    public void Dispose()
    {
        if (owned) buffer.Dispose();
    }
}
