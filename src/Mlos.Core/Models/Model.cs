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

/// <summary>One call into a plugin on a model's handle, run by <see cref="Model.Run"/>.</summary>
internal interface IModelCall
{
    SmiStatus Invoke(Plugin plugin, nint handle);
}

/// <summary>
/// A registered model: its plugin handle, its state and the requests running on it. Unload
/// waits until none runs, so the plugin never sees a request on a model it has released:
/// for a thread-safe plugin a request marks its thread's in-flight slot (see
/// <see cref="InflightSlots"/>); for a serialised one it holds the plugin's gate and checks the
/// state under it.
/// </summary>
public sealed class Model
{
    private int _state;
    private int _inflight;

    internal Model(string id, Plugin plugin, nint handle, string? path, string? framework, string? version, Batching.BatchingOptions? batching = null)
    {
        Id = id;
        Batching = batching;
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

    /// <summary>Dynamic batching asked for at registration; null when requests run one by one.</summary>
    public Batching.BatchingOptions? Batching { get; }

    /// <summary>The running batcher while the model is loaded with batching on.</summary>
    internal Batching.DynamicBatcher? Batcher { get; private set; }

    /// <summary>Batches and the requests they held since load, or null without batching.</summary>
    public (long Batches, long Requests)? BatchCounts => Batcher?.Counts;

    /// <summary>
    /// Starts batching after load. Merging along dim 0 is only right for a model that says every
    /// input and output has a free batch dimension (-1 first); others are refused here, with the
    /// offending tensor named, rather than given wrong answers later.
    /// </summary>
    internal unsafe void StartBatching()
    {
        if (Batching is null) return;
        var io = Plugin.ModelIo(Handle) ?? throw new MlosException(SmiStatus.NotSupported,
            $"model '{Id}': dynamic batching needs the plugin's input and output specs (get_model_io), which plugin '{Plugin.Id}' does not give");
        foreach (var (what, specs) in new[] { ("input", io.Inputs), ("output", io.Outputs) })
        {
            foreach (var spec in specs)
            {
                if (spec.NDim == 0 || spec.Shape[0] != -1)
                    throw new MlosException(SmiStatus.InvalidParam,
                        $"model '{Id}' has no batch dimension: {what} '{Smi.Sdk.Utf8.Read(spec.Name)}' is [{string.Join(",", spec.Dims.ToArray())}]; dynamic batching needs dim 0 = -1 in every input and output");
            }
        }
        Batcher = new Batching.DynamicBatcher(this, Batching);
    }

    /// <summary>Stops batching: queued requests still run, new ones go straight to the (unloading) model.</summary>
    internal void StopBatching()
    {
        var batcher = Batcher;
        Batcher = null;
        batcher?.Dispose();
    }

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

    /// <summary>
    /// Runs <paramref name="call"/> if the model is loaded and keeps unload away meanwhile.
    /// Generic over a struct so that each call site compiles to a direct call.
    /// </summary>
    internal SmiStatus Run<TCall>(ref TCall call) where TCall : struct, IModelCall
    {
        if (Plugin.Gate is { } gate)
        {
            using (gate.Hold())
            {
                if (Volatile.Read(ref _state) != (int)ModelState.Loaded) throw NotRunnable();
                return call.Invoke(Plugin, Handle);
            }
        }
        var slot = InflightSlots.Mine;
        if (slot.Current is not null) return RunNested(ref call); // a plugin calling back into the core
        Volatile.Write(ref slot.Current, this);
        try
        {
            if (Volatile.Read(ref _state) != (int)ModelState.Loaded) throw NotRunnable();
            return call.Invoke(Plugin, Handle);
        }
        finally { Volatile.Write(ref slot.Current, null); }
    }

    /// <summary>A request inside another on the same thread: its slot is taken, so count it instead.</summary>
    private SmiStatus RunNested<TCall>(ref TCall call) where TCall : struct, IModelCall
    {
        if (!TryEnter()) throw NotRunnable();
        try { return call.Invoke(Plugin, Handle); }
        finally { Exit(); }
    }

    internal MlosException NotRunnable() => new(
        State == ModelState.Unloading ? SmiStatus.Busy : SmiStatus.InvalidState,
        $"model '{Id}' is {State.ToString().ToLowerInvariant()}, not loaded");

    internal void SetState(ModelState state) => Interlocked.Exchange(ref _state, (int)state);

    /// <summary>Stops new requests and waits for running ones; the caller holds <see cref="AdminLock"/>.</summary>
    internal void Drain(ModelState next)
    {
        SetState(next);
        if (Plugin.Gate is { } gate)
        {
            // A serialised request runs holding the gate and checked the state under it:
            // once we have held it, none can still be running or start.
            gate.Enter();
            gate.Exit();
            return;
        }
        // Pairs with the plain store-then-load of a request: see InflightSlots.
        Interlocked.MemoryBarrierProcessWide();
        var spin = new SpinWait();
        while (Volatile.Read(ref _inflight) != 0 || InflightSlots.AnyRunning(this)) spin.SpinOnce(sleep1Threshold: 20);
    }
}
