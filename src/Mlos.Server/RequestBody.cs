using Mlos.Smi.Sdk;

namespace Mlos.Server;

/// <summary>
/// A request body read whole into native memory (bounded by the body size limit); dispose to give
/// it back. Native, not pooled arrays: one 64 MB request must not leave a 64 MB array in a pool,
/// or on a managed heap the GC may keep committed, after it is answered. Pages that are never
/// written cost no RSS, so sizing from Content-Length up front is cheap.
/// </summary>
internal readonly struct RequestBody(NativeBuffer buffer) : IDisposable
{
    public unsafe byte* Pointer => buffer.Pointer;
    public int Length => (int)buffer.Length;
    public unsafe ReadOnlySpan<byte> Span => new(buffer.Pointer, Length);

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    public static async ValueTask<RequestBody> ReadAsync(HttpContext http, long maxBytes)
    {
        long? declared = http.Request.ContentLength;
        if (declared > maxBytes) throw TooLarge(maxBytes);
        var buffer = new NativeBuffer((nuint)Math.Clamp(declared ?? 4096, 1, maxBytes));
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
            return new RequestBody(buffer);
        }
        catch (IOException e) when (e is not BadHttpRequestException && !http.RequestAborted.IsCancellationRequested)
        {
            buffer.Dispose();
            throw Malformed(e);
        }
        catch
        {
            buffer.Dispose();
            throw;
        }
    }

    private static unsafe void Append(NativeBuffer buffer, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(new Span<byte>(buffer.Reserve((nuint)bytes.Length), bytes.Length));
        buffer.Advance((nuint)bytes.Length);
    }

    /// <summary>A body whose framing Kestrel could not read (a bad chunk size, a truncated chunk): the client's mistake.</summary>
    public static BadHttpRequestException Malformed(IOException e) => new($"the request body is malformed: {e.Message}", 400, e);

    private static BadHttpRequestException TooLarge(long maxBytes) => new($"request body larger than {maxBytes >> 20} MB", 413);

    public void Dispose() => buffer.Dispose();
}
