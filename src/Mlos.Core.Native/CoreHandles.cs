using System.Collections.Concurrent;
using Mlos.Smi.Abi;

namespace Mlos.Core.Native;

/// <summary>
/// <c>mlos_core_t*</c> values are ids from this table, not object addresses: a destroyed,
/// forged or double-freed handle is reported as an error instead of touching freed memory.
/// </summary>
internal static class CoreHandles
{
    private static readonly ConcurrentDictionary<nint, MlosCore> s_cores = new();
    private static long s_next = 0x1000;

    // The calling thread's last resolved handle: ids are never reused and a destroyed core says
    // so, so the entry is valid exactly while the core is alive.
    [ThreadStatic] private static nint t_lastId;
    [ThreadStatic] private static MlosCore? t_lastCore;

    public static nint Add(MlosCore core)
    {
        var id = (nint)Interlocked.Add(ref s_next, 0x10);
        s_cores[id] = core;
        return id;
    }

    public static MlosCore Get(nint id)
    {
        if (id == t_lastId && t_lastCore is { IsDisposed: false } cached) return cached;
        if (!s_cores.TryGetValue(id, out var core))
            throw new MlosException(SmiStatus.InvalidParam, id == 0 ? "core must not be NULL" : $"unknown or destroyed core 0x{id:x}");
        (t_lastId, t_lastCore) = (id, core);
        return core;
    }

    public static MlosCore Remove(nint id) =>
        s_cores.TryRemove(id, out var core) ? core
        : throw new MlosException(SmiStatus.InvalidParam, id == 0 ? "core must not be NULL" : $"unknown or destroyed core 0x{id:x}");
}
