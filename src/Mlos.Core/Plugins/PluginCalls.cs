using Mlos.Smi.Abi;

namespace Mlos.Core.Plugins;

/// <summary>
/// Which plugin the calling thread is inside, so that a plugin calling back into the core is
/// recognised. Such a call is served only where it cannot deadlock: inference on a model of a
/// thread-safe plugin (run on the calling thread, never queued behind a batcher that may be the
/// caller itself). Everything else, inference on a serialised plugin (its gate may be the one
/// this thread holds), load, unload, unregister, register, resources, model info and destroy
/// (each may wait for the very call it is made from), fails with INVALID_STATE.
/// </summary>
/// <remarks>
/// The mark lives in the thread's <see cref="Models.InflightSlots"/> slot, which the request path
/// reads anyway: a thread-safe request's <c>Current</c> model says which plugin it is inside, so
/// that path pays nothing more for it.
/// </remarks>
internal static class PluginCalls
{
    /// <summary>The plugin whose code the calling thread is running, or null.</summary>
    public static Plugin? Inside => Of(Models.InflightSlots.Mine);

    public static Plugin? Of(Models.InflightSlots.Slot slot) => slot.Inside ?? slot.Current?.Plugin;

    /// <summary>Marks the thread as inside <paramref name="plugin"/> until the scope ends.</summary>
    public static Scope Enter(Plugin plugin)
    {
        var slot = Models.InflightSlots.Mine;
        var previous = slot.Inside;
        slot.Inside = plugin;
        return new Scope(slot, previous);
    }

    /// <summary>Fails when the calling thread is inside a plugin: <paramref name="what"/> may wait for that very call.</summary>
    public static void RefuseReentry(string what)
    {
        if (Inside is { } p) throw Reentrant(p, what);
    }

    public static MlosException Reentrant(Plugin inside, string what) => new(SmiStatus.InvalidState,
        $"re-entrant call from plugin '{inside.Id}': {what} is refused from inside a call into a plugin, where it could deadlock");

    public readonly ref struct Scope(Models.InflightSlots.Slot slot, Plugin? previous)
    {
        public void Dispose() => slot.Inside = previous;
    }
}
