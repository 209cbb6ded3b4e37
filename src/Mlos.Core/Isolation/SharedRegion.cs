using Mlos.Core.Isolation.Interop;
using Mlos.Smi.Abi;
using Mlos.Smi.Interop;

namespace Mlos.Core.Isolation;

/// <summary>
/// One shared file (memfd) mapped by the core and a plugin host: where a call's request, tensor
/// data and answer lie, so that no tensor byte crosses a socket. The core creates it sealed
/// against shrinking; either side may grow it, up to <see cref="Limit"/>, and the other follows
/// the size the frame reports (never past the file's real size, which it asks the kernel for).
/// A mapping moves when it grows: callers keep offsets, not pointers, across a growth.
/// </summary>
internal sealed unsafe class SharedRegion : IDisposable
{
    /// <summary>Size of a new region: small requests never grow it; untouched pages cost nothing.</summary>
    public const ulong InitialSize = 1 << 20;

    private SharedRegion(int fd, byte* at, ulong size, ulong limit)
    {
        Fd = fd;
        Base = at;
        Size = size;
        Limit = limit;
    }

    public int Fd { get; private set; }
    public byte* Base { get; private set; }
    /// <summary>Bytes mapped here (the file may be larger when the peer grew it and this side has not followed yet).</summary>
    public ulong Size { get; private set; }
    /// <summary>The most bytes either side lets it grow to (the plugin's <c>shared_memory_mb</c>).</summary>
    public ulong Limit { get; }

    /// <summary>A new region, on the core's side.</summary>
    public static SharedRegion Create(ulong limit)
    {
        ulong size = Math.Min(InitialSize, limit);
        int fd = Memfd.CreateSealed(size);
        var at = MapShared(fd, size);
        if (at == null)
        {
            UnixSocket.Close(fd);
            throw new MlosException(SmiStatus.OutOfMemory, "cannot map shared memory for a plugin host");
        }
        return new SharedRegion(fd, at, size, limit);
    }

    /// <summary>The region behind a descriptor the core sent, on the host's side.</summary>
    public static SharedRegion Open(int fd, ulong limit)
    {
        long size = Memfd.Size(fd);
        if (size <= 0) throw new MlosException(SmiStatus.InvalidParam, "the shared memory sent by the core is empty");
        var at = MapShared(fd, (ulong)size);
        if (at == null) throw new MlosException(SmiStatus.OutOfMemory, "cannot map the shared memory sent by the core");
        return new SharedRegion(fd, at, (ulong)size, limit);
    }

    private static byte* MapShared(int fd, ulong size)
    {
        const int MAP_SHARED = 0x01;
        var at = Mman.Map(null, (nuint)size, Mman.PROT_READ | Mman.PROT_WRITE, MAP_SHARED, fd, 0);
        return at == Mman.Failed ? null : (byte*)at;
    }

    /// <summary>Makes at least <paramref name="needed"/> bytes mapped, growing the file; false past <see cref="Limit"/> or when the system refuses.</summary>
    public bool TryEnsure(ulong needed)
    {
        if (needed <= Size) return true;
        if (needed > Limit) return false;
        ulong target = Math.Min(Math.Max((needed + 0xFFFF) & ~0xFFFFUL, Size * 2), Limit);
        long actual = Memfd.Size(Fd);
        if (actual < 0) return false;
        if ((ulong)actual < target && !Memfd.Resize(Fd, target)) return false;
        return Remap(Math.Min(Math.Max((ulong)actual, target), Limit));
    }

    /// <summary>Follows a growth the peer reports: maps up to <paramref name="reported"/> bytes, never past the file's real size or the limit.</summary>
    public void Follow(ulong reported)
    {
        if (reported <= Size) return;
        long actual = Memfd.Size(Fd);
        if (actual <= 0) return;
        ulong target = Math.Min(Math.Min(reported, (ulong)actual), Limit);
        if (target > Size) Remap(target);
    }

    private bool Remap(ulong size)
    {
        var at = Mman.Remap(Base, (nuint)Size, (nuint)size, Mman.MREMAP_MAYMOVE);
        if (at == Mman.Failed) return false;
        Base = (byte*)at;
        Size = size;
        return true;
    }

    public void Dispose()
    {
        if (Base != null) Mman.Unmap(Base, (nuint)Size);
        Base = null;
        Size = 0;
        if (Fd >= 0) UnixSocket.Close(Fd);
        Fd = -1;
    }
}
