namespace Mlos.Core.Models;

/// <summary>
/// Which model each thread is running a request on, for thread-safe plugins. A request marks
/// its thread's slot with a plain store and then reads the model's state with a plain load;
/// unload sets the state, then issues a process-wide memory barrier
/// (<see cref="Interlocked.MemoryBarrierProcessWide"/>) and reads every slot. The barrier
/// orders both sides, so either the request sees the new state or unload sees the slot: the
/// request path pays no atomic instruction, and the rare unload pays for the barrier.
///
/// Unload waits only for the requests it saw: each slot also counts the requests its thread
/// has finished (<see cref="Slot.Finished"/>), and unload waits until that count moves on for
/// every slot that held the model, instead of until no slot holds it. Requests that arrive
/// later are refused, but on a busy model some slot nearly always holds one for an instant:
/// waiting for "none" starved unload for seconds under 16 request threads.
/// </summary>
internal static class InflightSlots
{
    internal sealed class Slot(Thread owner)
    {
        /// <summary>Written only by <see cref="Owner"/>; read by unloading threads.</summary>
        public Model? Current;
        /// <summary>Requests this thread has finished; written only by <see cref="Owner"/>.</summary>
        public long Finished;
        /// <summary>
        /// The plugin whose code this thread runs outside a thread-safe request (a serialised
        /// request, an admin call), for <see cref="Plugins.PluginCalls"/>; written only by <see cref="Owner"/>.
        /// </summary>
        public Plugins.Plugin? Inside;
        public readonly Thread Owner = owner;

        /// <summary>Ends the owner's request: the mark goes, then the count moves on.</summary>
        public void Leave()
        {
            Volatile.Write(ref Current, null);
            Volatile.Write(ref Finished, Finished + 1);
        }
    }

    /// <summary>
    /// A request an unload saw running: its thread's slot and that slot's count then. It still
    /// runs while the count has not moved and the slot still holds the model: the count alone is
    /// not enough, as it may have been read just after the request left, and a thread that makes
    /// no further request would then never move it again.
    /// </summary>
    internal readonly record struct Seen(Slot Slot, long Finished, Model Model)
    {
        public bool StillRunning => Volatile.Read(ref Slot.Finished) == Finished && Volatile.Read(ref Slot.Current) == Model;
        public string ThreadName => Slot.Owner.Name ?? $"#{Slot.Owner.ManagedThreadId}";
    }

    [ThreadStatic] private static Slot? t_slot;
    private static readonly Lock s_registerLock = new();
    private static Slot[] s_all = [];

    /// <summary>The calling thread's slot, registered on first use.</summary>
    public static Slot Mine => t_slot ?? Register();

    /// <summary>
    /// The requests running on <paramref name="model"/> now. The mark is read before the count:
    /// a request still running when the count is read has not counted itself yet, so waiting
    /// for the count to move (or the mark to go) waits for it.
    /// </summary>
    public static List<Seen> Running(Model model)
    {
        var seen = new List<Seen>();
        foreach (var slot in Volatile.Read(ref s_all))
            if (Volatile.Read(ref slot.Current) == model) seen.Add(new Seen(slot, Volatile.Read(ref slot.Finished), model));
        return seen;
    }

    public static bool StillRunning(List<Seen> seen)
    {
        foreach (var s in seen)
            if (s.StillRunning) return true;
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
