using Mlos.Core.Isolation.Interop;

namespace Mlos.Core.Isolation.Wire;

/// <summary>
/// One channel between the core and a plugin host: a stream socket and a shared region for the
/// messages. The first channel carries its frames on the socket (and the descriptors of the
/// others); a call channel rings a <see cref="Doorbell"/> in its region instead, its socket only
/// telling that the peer is gone. One call at a time runs on a channel (request, then reply);
/// calls in parallel take channels of their own. Either side owns its two descriptors.
/// </summary>
internal sealed unsafe class WireChannel : IDisposable
{
    private readonly WireSide? _doorbell;
    private uint _seen;

    /// <param name="doorbell">The side this end is, for a call channel; null for the first channel (frames on the socket).</param>
    public WireChannel(int socket, SharedRegion region, WireSide? doorbell = null)
    {
        Socket = socket;
        Region = region;
        _doorbell = doorbell;
        // _seen starts at 0, the words of a new region: the core may ring before the host's end exists.
    }

    public int Socket { get; private set; }
    public SharedRegion Region { get; }

    /// <summary>
    /// Whether the peer lives, for a waiting end that cannot trust the socket alone: a child the
    /// host forked may hold the host's end open after the host died.
    /// </summary>
    public Func<bool>? PeerAlive { get; init; }

    /// <summary>Where a message may start: after the doorbell on a call channel.</summary>
    public ulong MessageStart => _doorbell is null ? 0 : Doorbell.HeaderBytes;

    /// <summary>Sends a frame for the message at [offset, offset + length) of the region; false when the peer is gone.</summary>
    public bool Send(WireOp op, ulong offset, uint length, int status = 0, WireFlags flags = WireFlags.None)
    {
        var frame = new WireFrame { Op = op, Flags = flags, Status = status, Length = length, Offset = checked((uint)offset), RegionSize = Region.Size };
        if (_doorbell is { } side)
        {
            if (Socket < 0) return false;
            Doorbell.Ring(Region, side, frame);
            return true;
        }
        return UnixSocket.WriteAll(Socket, &frame, WireFrame.Size);
    }

    /// <summary>
    /// <see cref="Receive(out WireFrame)"/> waiting at most <paramref name="timeoutMs"/> (0: no limit);
    /// <paramref name="timedOut"/> says the time ran out (the frame may still come: the channel is spoilt).
    /// </summary>
    public bool Receive(out WireFrame frame, int timeoutMs, out bool timedOut)
    {
        timedOut = false;
        if (_doorbell is { } side)
        {
            var outcome = Doorbell.Wait(Region, side, ref _seen, Socket, PeerAlive, timeoutMs, out frame);
            timedOut = outcome == Doorbell.Outcome.TimedOut;
            if (outcome != Doorbell.Outcome.Frame) return false;
            Region.Follow(frame.RegionSize);
            return true;
        }
        timedOut = timeoutMs > 0 && !UnixSocket.WaitReadable(Socket, timeoutMs);
        if (!timedOut) return Receive(out frame);
        frame = default;
        return false;
    }

    /// <summary>Waits for the next frame and follows a growth of the region it reports; false when the peer is gone.</summary>
    public bool Receive(out WireFrame frame)
    {
        if (_doorbell is not null) return Receive(out frame, 0, out _);
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
