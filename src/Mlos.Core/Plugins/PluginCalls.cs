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
internal static class PluginCalls
{
    [ThreadStatic] private static Plugin? t_inside;

    /// <summary>The plugin whose code the calling thread is running, or null.</summary>
    public static Plugin? Inside => t_inside;

    /// <summary>Marks the thread as inside <paramref name="plugin"/> until the scope ends.</summary>
    public static Scope Enter(Plugin plugin)
    {
        var previous = t_inside;
        t_inside = plugin;
        return new Scope(previous);
    }

    /// <summary>Fails when the calling thread is inside a plugin: <paramref name="what"/> may wait for that very call.</summary>
    public static void RefuseReentry(string what)
    {
        if (t_inside is { } p) throw Reentrant(p, what);
    }

    public static MlosException Reentrant(Plugin inside, string what) => new(SmiStatus.InvalidState,
        $"re-entrant call from plugin '{inside.Id}': {what} is refused from inside a call into a plugin, where it could deadlock");

    public readonly ref struct Scope(Plugin? previous)
    {
        public void Dispose() => t_inside = previous;
    }
}
