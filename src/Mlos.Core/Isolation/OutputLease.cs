using System.Runtime.InteropServices;
using Mlos.Core.Isolation.Wire;
using Mlos.Smi.Abi;

namespace Mlos.Core.Isolation;

/// <summary>
/// Outputs an isolated plugin allocated lie in the region of the channel their call ran on, where
/// the host copied them: the core hands them on in place (no copy on this side) and the channel
/// serves no other call until the last of them is released. The core's mapping stays valid after
/// the host is gone, so an output outlives a crash like any other.
/// </summary>
internal sealed unsafe class OutputLease
{
    private readonly HostProcess _host;
    private readonly WireChannel _lane;
    private readonly GCHandle _self;
    private int _remaining = 1; // the call's own hold, dropped by Done

    public OutputLease(HostProcess host, WireChannel lane)
    {
        _host = host;
        _lane = lane;
        _self = GCHandle.Alloc(this);
    }

    /// <summary>Makes <paramref name="t"/> an output released through this lease.</summary>
    public void Lend(SmiTensor* t)
    {
        Interlocked.Increment(ref _remaining);
        t->Release = &Release;
        t->ReleaseContext = (void*)GCHandle.ToIntPtr(_self);
    }

    /// <summary>Whether <paramref name="t"/> is an output this lease lent (not a caller's buffer with a release of its own).</summary>
    public bool Owns(SmiTensor* t) => t->Release != null && t->ReleaseContext == (void*)GCHandle.ToIntPtr(_self); // the handle is this lease's alone

    /// <summary>Drops the call's hold: with no output lent, the channel goes back now.</summary>
    public void Done() => Drop();

    private void Drop()
    {
        if (Interlocked.Decrement(ref _remaining) != 0) return;
        _self.Free();
        _host.Return(_lane);
    }

    [UnmanagedCallersOnly]
    private static void Release(SmiTensor* t)
    {
        if (t == null || t->ReleaseContext == null) return;
        var lease = (OutputLease)GCHandle.FromIntPtr((nint)t->ReleaseContext).Target!;
        t->ReleaseContext = null;
        t->Data = null;
        lease.Drop();
    }

    /// <summary>An address inside this library's code, for finding the file it was loaded from.</summary>
    public static void* CodeAddress => (delegate* unmanaged<SmiTensor*, void>)&Release;
}
