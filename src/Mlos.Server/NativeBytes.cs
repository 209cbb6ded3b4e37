namespace Mlos.Server;

/// <summary>A native byte range to send: spans cannot cross an await, this can. The memory must stay put until sent.</summary>
internal readonly unsafe struct NativeBytes(byte* start, long length)
{
    public long Length { get; } = length;
    public ReadOnlySpan<byte> Span(long offset, int count) => new(start + offset, count);
}
