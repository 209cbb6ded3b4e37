namespace Mlos.Core.Models;

/// <summary>
/// Which model each thread is running a request on, for thread-safe plugins. A request marks
/// its thread's slot with a plain store and then reads the model's state with a plain load;
/// unload sets the state, then issues a process-wide memory barrier
/// (<see cref="Interlocked.MemoryBarrierProcessWide"/>) and reads every slot. The barrier
/// orders both sides, so either the request sees the new state or unload sees the slot: the
/// request path pays no atomic instruction, and the rare unload pays for the barrier.
/// </summary>
internal static class InflightSlots
{
    internal sealed class Slot(Thread owner)
    {
        /// <summary>Written only by <see cref="Owner"/>; read by unloading threads.</summary>
        public Model? Current;
        public readonly Thread Owner = owner;
    }

    [ThreadStatic] private static Slot? t_slot;
    private static readonly Lock s_registerLock = new();
    private static Slot[] s_all = [];

    /// <summary>The calling thread's slot, registered on first use.</summary>
    public static Slot Mine => t_slot ?? Register();

    /// <summary>Whether some thread is inside a request on <paramref name="model"/>.</summary>
    public static bool AnyRunning(Model model)
    {
        foreach (var slot in Volatile.Read(ref s_all))
            if (Volatile.Read(ref slot.Current) == model) return true;
        return false;
    }

    private static Slot Register()
    {
        var slot = new Slot(Thread.CurrentThread);
        lock (s_registerLock)
        {
            // Copy-on-write, dropping the idle slots of threads that have exited.
            var live = s_all.Where(s => s.Owner.IsAlive || s.Current is not null);
            Volatile.Write(ref s_all, [.. live, slot]);
        }
        t_slot = slot;
        return slot;
    }
}
