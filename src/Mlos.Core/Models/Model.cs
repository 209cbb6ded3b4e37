using Mlos.Core.Plugins;
using Mlos.Smi.Abi;

namespace Mlos.Core.Models;

/// <summary>Where a model is in its life.</summary>
public enum ModelState
{
    Registered = 0,
    Loaded = 1,
    Unloading = 2,
    Unregistered = 3,
}

/// <summary>
/// A registered model: its plugin handle, its state and the count of requests running on it.
/// A request holds a lease (<see cref="TryEnter"/> / <see cref="Exit"/>) while it uses the
/// handle; unload waits until the count drains, so the plugin never sees a request on a model
/// it has released.
/// </summary>
public sealed class Model
{
    private int _state;
    private int _inflight;

    internal Model(string id, Plugin plugin, nint handle, string? path, string? framework, string? version)
    {
        Id = id;
        Plugin = plugin;
        Handle = handle;
        Path = path;
        Framework = framework;
        Version = version;
    }

    public string Id { get; }
    public Plugin Plugin { get; }
    internal nint Handle { get; }
    public string? Path { get; }
    public string? Framework { get; }
    public string? Version { get; }
    public ModelState State => (ModelState)Volatile.Read(ref _state);

    /// <summary>Serialises load, unload and unregister of this model.</summary>
    internal Lock AdminLock { get; } = new();

    /// <summary>
    /// Starts a request. The increment comes before the state check and unload sets the state
    /// before it reads the count (both full fences), so one of them always sees the other.
    /// </summary>
    internal bool TryEnter()
    {
        Interlocked.Increment(ref _inflight);
        if (Volatile.Read(ref _state) == (int)ModelState.Loaded) return true;
        Interlocked.Decrement(ref _inflight);
        return false;
    }

    internal void Exit() => Interlocked.Decrement(ref _inflight);

    internal MlosException NotRunnable() => new(
        State == ModelState.Unloading ? SmiStatus.Busy : SmiStatus.InvalidState,
        $"model '{Id}' is {State.ToString().ToLowerInvariant()}, not loaded");

    internal void SetState(ModelState state) => Interlocked.Exchange(ref _state, (int)state);

    /// <summary>Stops new requests and waits for running ones; the caller holds <see cref="AdminLock"/>.</summary>
    internal void Drain(ModelState next)
    {
        SetState(next);
        var spin = new SpinWait();
        while (Volatile.Read(ref _inflight) != 0) spin.SpinOnce(sleep1Threshold: 20);
    }
}
