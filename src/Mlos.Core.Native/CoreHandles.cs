using System.Collections.Concurrent;
using Mlos.Smi.Abi;

namespace Mlos.Core.Native;

/// <summary>
/// <c>mlos_core_t*</c> values are ids from this table, not object addresses: a destroyed,
/// forged or double-freed handle is reported as an error instead of touching freed memory.
/// Ids are never reused. The first <see cref="FastSlots"/> cores resolve through an array (one
/// load on every API call); any later ones through a dictionary.
/// </summary>
internal static class CoreHandles
{
    private const int FastSlots = 4096;
    private const long Base = 0x1000, Stride = 0x10;

    private static readonly MlosCore?[] s_fast = new MlosCore?[FastSlots];
    private static readonly ConcurrentDictionary<nint, MlosCore> s_more = new();
    private static long s_count;

    public static nint Add(MlosCore core)
    {
        long n = Interlocked.Increment(ref s_count) - 1;
        var id = (nint)(Base + n * Stride);
        if (n < FastSlots) Volatile.Write(ref s_fast[n], core);
        else s_more[id] = core;
        return id;
    }

    /// <summary>The core for <paramref name="id"/>; on every API call, so the array case comes first.</summary>
    public static MlosCore Get(nint id)
    {
        ulong n = (ulong)((long)id - Base) >> 4;
        if (n < FastSlots && (id & (Stride - 1)) == 0 && Volatile.Read(ref s_fast[n]) is { } core) return core;
        return Find(id, remove: false);
    }

    public static MlosCore Remove(nint id) => Find(id, remove: true);

    private static MlosCore Find(nint id, bool remove)
    {
        long n = ((long)id - Base) / Stride;
        MlosCore? core;
        if ((long)id >= Base && ((long)id - Base) % Stride == 0 && n < FastSlots)
            core = remove ? Interlocked.Exchange(ref s_fast[n], null) : Volatile.Read(ref s_fast[n]);
        else if (remove) s_more.TryRemove(id, out core);
        else s_more.TryGetValue(id, out core);
        return core ?? throw new MlosException(SmiStatus.InvalidParam,
            id == 0 ? "core must not be NULL" : $"unknown or destroyed core 0x{id:x}");
    }
}
