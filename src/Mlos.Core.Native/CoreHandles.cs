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

    public static nint Add(MlosCore core)
    {
        var id = (nint)Interlocked.Add(ref s_next, 0x10);
        s_cores[id] = core;
        return id;
    }

    public static MlosCore Get(nint id) =>
        s_cores.TryGetValue(id, out var core) ? core
        : throw new MlosException(SmiStatus.InvalidParam, id == 0 ? "core must not be NULL" : $"unknown or destroyed core 0x{id:x}");

    public static MlosCore Remove(nint id) =>
        s_cores.TryRemove(id, out var core) ? core
        : throw new MlosException(SmiStatus.InvalidParam, id == 0 ? "core must not be NULL" : $"unknown or destroyed core 0x{id:x}");
}
