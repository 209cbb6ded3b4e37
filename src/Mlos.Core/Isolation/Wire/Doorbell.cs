using System.Diagnostics;
using Mlos.Core.Isolation.Interop;

namespace Mlos.Core.Isolation.Wire;

/// <summary>Which end of a channel: the core sends requests, the host replies.</summary>
internal enum WireSide { Core, Host }

/// <summary>
/// A call channel's doorbell, in the first <see cref="HeaderBytes"/> of its region: each side
/// writes its frame there and bumps its sequence word; the other side spins briefly on that word
/// (a reply that comes within microseconds costs no system call and no sleep), then sleeps on it
/// with a futex, woken only when the sender sees it waiting. Sockets carry no frames here: the
/// channel's socket only tells either side that the other is gone (its end closed, which a
/// sleeper checks every <see cref="CheckMs"/>). Each word has a cache line of its own.
/// </summary>
internal static unsafe class Doorbell
{
    /// <summary>Where messages start in a doorbell channel's region.</summary>
    public const ulong HeaderBytes = 256;

    private const int RequestSeq = 0, HostWaiting = 4, ReplySeq = 64, CoreWaiting = 68, RequestFrame = 128, ReplyFrame = 192;

    /// <summary>How long a sleeping side sleeps before it looks whether its peer is gone (or its call timed out).</summary>
    public static int CheckMs(WireSide side) => side == WireSide.Core ? 20 : 250;

    /// <summary>
    /// How long a side spins before it sleeps: the core 20 us for a quick reply, the host 5 us for
    /// a next request that follows at once (a caller in a loop). Measured on 2 cores: a host that
    /// spun 60 us cost a loaded HTTP server a quarter of its throughput (0.71x of in process; 5 us:
    /// 0.93-1.17x) for no gain in the loop (0.7-0.9 us added per call either way). Only half the
    /// processors spin at once: spinners past that sleep at once.
    /// </summary>
    private static long SpinTicks(WireSide side) => Stopwatch.Frequency * (side == WireSide.Core ? 20 : 5) / 1_000_000;

    private static readonly int MaxSpinners = Math.Max(1, Environment.ProcessorCount / 2);
    private static int s_spinners;

    private static uint* Word(SharedRegion region, int offset) => (uint*)(region.Base + offset);

    /// <summary>Publishes <paramref name="frame"/> and wakes the peer if it sleeps.</summary>
    public static void Ring(SharedRegion region, WireSide me, in WireFrame frame)
    {
        *(WireFrame*)(region.Base + (me == WireSide.Core ? RequestFrame : ReplyFrame)) = frame;
        uint* seq = Word(region, me == WireSide.Core ? RequestSeq : ReplySeq);
        Interlocked.Increment(ref *(int*)seq); // a full fence: the frame before the word, the word before the peek below
        if (Volatile.Read(ref *Word(region, me == WireSide.Core ? HostWaiting : CoreWaiting)) != 0) Futex.Wake(seq);
    }

    /// <summary>Wakes the core's end if it sleeps (its host died: it finds the socket closed at once instead of at its next check).</summary>
    public static void WakeCore(SharedRegion region) => Futex.Wake(Word(region, ReplySeq));

    public enum Outcome { Frame, PeerGone, TimedOut }

    /// <summary>
    /// Waits until the peer's sequence word moves past <paramref name="seen"/> (then updated) and
    /// reads its frame; or until the peer's end of <paramref name="socket"/> closes (or
    /// <paramref name="peerAlive"/> says it died), or
    /// <paramref name="timeoutMs"/> (0: none) passes.
    /// </summary>
    public static Outcome Wait(SharedRegion region, WireSide me, ref uint seen, int socket, Func<bool>? peerAlive, int timeoutMs, out WireFrame frame)
    {
        uint* seq = Word(region, me == WireSide.Core ? ReplySeq : RequestSeq);
        uint* waiting = Word(region, me == WireSide.Core ? CoreWaiting : HostWaiting);
        long start = Stopwatch.GetTimestamp();
        if (Interlocked.Increment(ref s_spinners) <= MaxSpinners)
        {
            long until = start + SpinTicks(me);
            try
            {
                do
                {
                    if (Volatile.Read(ref *seq) != seen) return Take(region, me, seq, ref seen, out frame);
                    Thread.SpinWait(1);
                }
                while (Stopwatch.GetTimestamp() < until);
            }
            finally { Interlocked.Decrement(ref s_spinners); }
        }
        else Interlocked.Decrement(ref s_spinners);

        long deadline = timeoutMs > 0 ? start + Stopwatch.Frequency * timeoutMs / 1000 : long.MaxValue;
        int check = CheckMs(me);
        while (true)
        {
            Interlocked.Exchange(ref *(int*)waiting, 1); // a full fence: the flag before the look
            uint now = Volatile.Read(ref *seq);
            if (now == seen)
            {
                long left = deadline == long.MaxValue ? check : (deadline - Stopwatch.GetTimestamp()) * 1000 / Stopwatch.Frequency;
                Futex.Wait(seq, seen, (int)Math.Clamp(left, 1, check));
            }
            Volatile.Write(ref *(int*)waiting, 0);
            if (Volatile.Read(ref *seq) != seen) return Take(region, me, seq, ref seen, out frame);
            frame = default;
            if (UnixSocket.PeerClosed(socket) || peerAlive?.Invoke() == false) return Outcome.PeerGone;
            if (Stopwatch.GetTimestamp() >= deadline) return Outcome.TimedOut;
        }
    }

    private static Outcome Take(SharedRegion region, WireSide me, uint* seq, ref uint seen, out WireFrame frame)
    {
        seen = Volatile.Read(ref *seq);
        frame = *(WireFrame*)(region.Base + (me == WireSide.Core ? ReplyFrame : RequestFrame));
        return Outcome.Frame;
    }
}
