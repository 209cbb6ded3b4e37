using Mlos.Core.Isolation.Interop;

namespace Mlos.Core.Isolation.Wire;

/// <summary>
/// One channel between the core and a plugin host: a stream socket for the frames and a shared
/// region for the messages. One call at a time runs on a channel (request, then reply); calls in
/// parallel take channels of their own. Either side owns its two descriptors and closes them.
/// </summary>
internal sealed unsafe class WireChannel : IDisposable
{
    public WireChannel(int socket, SharedRegion region)
    {
        Socket = socket;
        Region = region;
    }

    public int Socket { get; private set; }
    public SharedRegion Region { get; }

    /// <summary>Sends a frame for the message at [offset, offset + length) of the region; false when the peer is gone.</summary>
    public bool Send(WireOp op, ulong offset, uint length, int status = 0, WireFlags flags = WireFlags.None)
    {
        var frame = new WireFrame { Op = op, Flags = flags, Status = status, Length = length, Offset = checked((uint)offset), RegionSize = Region.Size };
        return UnixSocket.WriteAll(Socket, &frame, WireFrame.Size);
    }

    /// <summary>
    /// <see cref="Receive(out WireFrame)"/> waiting at most <paramref name="timeoutMs"/> (0: no limit);
    /// <paramref name="timedOut"/> says the time ran out (the frame may still come: the channel is spoilt).
    /// </summary>
    public bool Receive(out WireFrame frame, int timeoutMs, out bool timedOut)
    {
        timedOut = timeoutMs > 0 && !UnixSocket.WaitReadable(Socket, timeoutMs);
        if (!timedOut) return Receive(out frame);
        frame = default;
        return false;
    }

    /// <summary>Waits for the next frame and follows a growth of the region it reports; false when the peer is gone.</summary>
    public bool Receive(out WireFrame frame)
    {
        WireFrame f;
        if (!UnixSocket.ReadExactly(Socket, &f, WireFrame.Size))
        {
            frame = default;
            return false;
        }
        Region.Follow(f.RegionSize);
        frame = f;
        return true;
    }

    public WireReader Reader(WireFrame frame) => new(Region, frame.Offset, frame.Length);

    public void Dispose()
    {
        if (Socket >= 0) UnixSocket.Close(Socket);
        Socket = -1;
        Region.Dispose();
    }
}
