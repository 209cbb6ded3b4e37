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
    /// <summary>The plugin's load_model is running.</summary>
    Loading = 4,
    /// <summary>Unregister has begun: nothing new reaches the handle.</summary>
    Unregistering = 5,
}

/// <summary>One call into a plugin on a model's handle, run by <see cref="Model.Run"/>.</summary>
internal interface IModelCall
{
    SmiStatus Invoke(Model model, nint handle);

    /// <summary>CLOCK_MONOTONIC ns by which the call must be answered; 0 for none.</summary>
    ulong Deadline { get; }

    /// <summary>Inferences the call runs at once, for <see cref="ModelStatistics"/>: its rows (see <see cref="Model.RowsOf"/>; a merged batch's total).</summary>
    long Rows { get; }
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

    internal Model(string id, Plugin plugin, nint[] handles, NativePath? path, string? framework, string? version, Batching.BatchingOptions? batching = null)
    {
        Id = id;
        Batching = batching;
        Plugin = plugin;
        Handles = handles;
        Handle = handles[0];
        _busy = handles.Length > 1 ? new int[handles.Length] : null;
        _calls = new long[handles.Length];
        NativePath = path;
        Path = path?.Text;
        Framework = framework;
        Version = version;
    }

    public string Id { get; }
    public Plugin Plugin { get; }
    /// <summary>The first instance's handle: the one model info, specs and resources are asked of.</summary>
    internal nint Handle { get; }

    /// <summary>
    /// One plugin handle per instance (Triton's instance group <c>count</c>): independent
    /// sessions of the same model, which requests are spread over (the least busy first) and
    /// each of which has its own batcher.
    /// </summary>
    internal nint[] Handles { get; }

    public int Instances => Handles.Length;

    /// <summary>Most rows along dim 0 a request may carry (Triton's max_batch_size); 0 for no limit.</summary>
    public int MaxRows { get; init; }

    /// <summary>Inputs a request may leave out (Triton's <c>optional</c>).</summary>
    public IReadOnlyList<string> OptionalInputs { get; init; } = [];

    /// <summary>Shapes declared for the model's tensors (whole, dim 0 included): they fix what its plugin's specs leave free (see <see cref="ModelSpecs"/>).</summary>
    public IReadOnlyDictionary<string, long[]> DeclaredShapes { get; init; } = ModelOptions.NoShapes;

    /// <summary>Tensors clients see in another shape than the plugin (Triton's reshape), or null.</summary>
    public TensorReshape? Reshape { get; init; }

    /// <summary>Calls running on each instance (only with more than one).</summary>
    private readonly int[]? _busy;
    private readonly long[] _calls;

    /// <summary>Plugin calls each instance has run since registration (counted with more than one instance): how the load was spread.</summary>
    public long[] InstanceCalls => _calls.Select(c => Interlocked.Read(ref c)).ToArray();

    /// <summary>Loads every instance; one that fails unloads those loaded before it.</summary>
    internal void LoadInstances()
    {
        int loaded = 0;
        try
        {
            for (; loaded < Handles.Length; loaded++) Plugin.Load(Handles[loaded], NativePath);
        }
        catch
        {
            for (int k = 0; k < loaded; k++)
            {
                try { Plugin.Unload(Handles[k]); }
                catch (MlosException) { /* the load's own failure is the one to report */ }
            }
            throw;
        }
    }

    /// <summary>
    /// Unloads every instance. The first one's failure is thrown as it comes (nothing was
    /// unloaded then, so the model may serve on); once it is unloaded the others are all tried,
    /// and the first of their failures is returned, not thrown: the model no longer serves.
    /// </summary>
    internal MlosException? UnloadInstances()
    {
        Plugin.Unload(Handles[0]);
        MlosException? failure = null;
        for (int k = 1; k < Handles.Length; k++)
        {
            try { Plugin.Unload(Handles[k]); }
            catch (MlosException e) { failure ??= e; }
        }
        return failure;
    }

    /// <summary>Unregisters every instance's handle; all are tried, the first failure thrown.</summary>
    internal void UnregisterInstances()
    {
        MlosException? failure = null;
        foreach (var h in Handles)
        {
            try { Plugin.Unregister(h); }
            catch (MlosException e) { failure ??= e; }
        }
        if (failure is not null) throw failure;
    }

    /// <summary>Where the next pick starts looking: requests that arrive together (and all see the same counts) spread over equals.</summary>
    private int _nextPick;

    private int PickStart(int count) => (int)((uint)Interlocked.Increment(ref _nextPick) % (uint)count);

    /// <summary>The least busy instance (equals taken in turn).</summary>
    private int PickInstance()
    {
        var busy = _busy;
        if (busy is null) return 0;
        int best = PickStart(busy.Length), least = Volatile.Read(ref busy[best]);
        for (int k = 1; k < busy.Length && least > 0; k++)
        {
            int i = (best + k) % busy.Length, b = Volatile.Read(ref busy[i]);
            if (b < least) (best, least) = (i, b);
        }
        return best;
    }
    /// <summary>The model path for display; <see cref="NativePath"/> is what the plugin gets.</summary>
    public string? Path { get; }
    public NativePath? NativePath { get; }
    public string? Framework { get; }
    public string? Version { get; }

    /// <summary>
    /// The version the Open Inference Protocol serves this model as: its own, or "1" for a model
    /// registered without one (Triton's first version), so that versioned routes and metadata
    /// agree on one answer.
    /// </summary>
    public string ServedVersion => Version ?? "1";

    public ModelState State => (ModelState)Volatile.Read(ref _state);

    /// <summary>Whether the model can answer now: loaded, and its plugin running (an isolated plugin's host may have died).</summary>
    public bool IsReady => State == ModelState.Loaded && Plugin.IsAlive;

    /// <summary>
    /// Longest a typed request may take from the moment the core takes it (queueing included),
    /// in ms; 0 for no bound. Passed to the plugin as a deadline (SMI 1.2), which stops the run.
    /// </summary>
    public int TimeoutMs { get; init; }

    /// <summary>The deadline of a request arriving now: CLOCK_MONOTONIC ns, 0 for none.</summary>
    internal ulong DeadlineFromNow() => TimeoutMs > 0 ? Smi.Sdk.SmiDeadline.FromNow(TimeoutMs).Nanoseconds : 0;

    /// <summary>Dynamic batching asked for at registration; null when requests run one by one.</summary>
    public Batching.BatchingOptions? Batching { get; }

    /// <summary>The running batchers (one per instance) while the model is loaded with batching on.</summary>
    private Batching.DynamicBatcher[]? _batchers;

    /// <summary>The first instance's batcher (its options are every instance's), or null.</summary>
    internal Batching.DynamicBatcher? Batcher => _batchers?[0];

    /// <summary>The batcher a request joins: the one with the least waiting (equals in turn), so that requests go to instances as they free up.</summary>
    internal Batching.DynamicBatcher? PickBatcher()
    {
        var all = _batchers;
        if (all is null || all.Length == 1) return all?[0];
        int start = PickStart(all.Length);
        var best = all[start];
        int least = best.Pending;
        for (int k = 1; k < all.Length && least > 0; k++)
            if (all[(start + k) % all.Length] is var b && b.Pending is var p && p < least) (best, least) = (b, p);
        return best;
    }

    /// <summary>Batches and the requests they held since load, summed over the instances, or null without batching.</summary>
    public (long Batches, long Requests)? BatchCounts =>
        _batchers is { } all ? (all.Sum(b => b.Counts.Batches), all.Sum(b => b.Counts.Requests)) : null;

    /// <summary>The specs its plugin gave at load (null when it gives none, or while not loaded): what requests are checked against.</summary>
    public ModelSpecs? Specs { get; private set; }

    internal void CacheSpecs()
    {
        var specs = ModelSpecs.Read(this);
        Specs = specs;
        _freeDim0 = specs is { Inputs.Length: > 0 } && Array.TrueForAll(specs.Inputs, s => s.Shape.Length > 0 && s.Shape[0] < 0);
    }

    internal void ForgetSpecs()
    {
        Specs = null;
        _freeDim0 = false;
    }

    /// <summary>
    /// Starts batching after load. Merging along dim 0 is only right for a model that says every
    /// input and output has a free batch dimension (-1 first). Asked for explicitly, a model that
    /// has none is refused here, with the offending tensor named, rather than given wrong answers
    /// later. By default (<see cref="Batching.BatchingOptions.Automatic"/>) batching starts only
    /// where it is safe and pays, and otherwise stays off: <see cref="WhyNotBatched"/> says why.
    /// </summary>
    internal unsafe void StartBatching()
    {
        WhyNotBatched = null;
        if (Batching is null) return;
        // A reshape of whole shapes (no row limit) may move what dim 0 means: merged requests would mix.
        if (Reshape is { Batched: false })
        {
            if (!Batching.Automatic)
                throw new MlosException(SmiStatus.InvalidParam, $"model '{Id}': dynamic batching needs a row limit (max_rows) when tensors are reshaped: a reshape of whole shapes does not keep dim 0");
            WhyNotBatched = "it reshapes whole tensors (no row limit), so dim 0 is not a batch dimension";
            return;
        }
        if (Batching.Automatic)
        {
            WhyNotBatched = AutomaticBatchingRefusal();
            if (WhyNotBatched is null) _batchers = NewBatchers(Batching);
            return;
        }
        var io = Plugin.ModelIo(Handle) ?? throw new MlosException(SmiStatus.NotSupported,
            $"model '{Id}': dynamic batching needs the plugin's input and output specs (get_model_io), which plugin '{Plugin.Id}' does not give");
        foreach (var (what, specs) in new[] { ("input", io.Inputs), ("output", io.Outputs) })
        {
            foreach (var spec in specs)
            {
                if (spec.NDim == 0 || spec.Shape[0] != -1)
                    throw new MlosException(SmiStatus.InvalidParam,
                        $"model '{Id}' has no batch dimension: {what} '{PluginText.Read(spec.Name)}' is [{string.Join(",", spec.Dims.ToArray())}]; dynamic batching needs dim 0 = -1 in every input and output");
            }
        }
        _batchers = NewBatchers(Batching);
    }

    private Batching.DynamicBatcher[] NewBatchers(Batching.BatchingOptions options) =>
        Enumerable.Range(0, Instances).Select(i => new Batching.DynamicBatcher(this, options, i)).ToArray();

    /// <summary>
    /// Why default batching stays off for this model, or null when it may start: Triton's rule
    /// (every input and output has a free dim 0), made safer (rank 2 or more), plus what our batcher needs to gain anything —
    /// a plugin that declares SMI_CAP_BATCHING (typed infer takes any size along dim 0) and
    /// fixed-size elements everywhere (BYTES requests are never merged).
    /// </summary>
    private unsafe string? AutomaticBatchingRefusal()
    {
        if (!Plugin.HasTypedInfer) return "the plugin has no typed infer";
        if (!Plugin.Capabilities.HasFlag(SmiCapabilities.Batching)) return "the plugin does not declare SMI_CAP_BATCHING";
        Smi.Sdk.SmiModelIo? io;
        try { io = Plugin.ModelIo(Handle); }
        catch (MlosException e) { return $"its input and output specs are unknown ({e.Message})"; }
        if (io is null) return "the plugin gives no input and output specs";
        if (io.Inputs.Length == 0 || io.Outputs.Length == 0) return "it declares no inputs or no outputs";
        foreach (var (what, specs) in new[] { ("input", io.Inputs), ("output", io.Outputs) })
        {
            foreach (var spec in specs)
            {
                if (spec.NDim == 0 || spec.Shape[0] != -1)
                    return $"{what} '{PluginText.Read(spec.Name)}' has no free dim 0";
                if (SmiDtypes.ElementSize(spec.Dtype) <= 0)
                    return $"{what} '{PluginText.Read(spec.Name)}' is {SmiDtypes.Name(spec.Dtype)}, which is not merged";
                // A free dim 0 of a 1-D tensor is as often a sequence (tokens, samples, boxes) as a
                // batch: merging two requests' sequences would run them as one.
                if (spec.NDim < 2)
                    return $"{what} '{PluginText.Read(spec.Name)}' is 1-D, so its dim 0 may be a sequence rather than a batch";
            }
        }
        return null;
    }

    /// <summary>Why default batching is off for this loaded model (see <see cref="AutomaticBatchingRefusal"/>); null when it runs or was not left to the default.</summary>
    public string? WhyNotBatched { get; private set; }

    /// <summary>The batching in force now: the options while a batcher runs, else null.</summary>
    public Batching.BatchingOptions? ActiveBatching => Batcher?.Options;

    /// <summary>
    /// Stops batching: queued requests still run, new ones go straight to the (unloading) model.
    /// BUSY when the batch running now has not finished within <paramref name="timeoutMs"/>; its
    /// leader still runs what is queued after it, and new requests meanwhile run unbatched.
    /// </summary>
    internal void StopBatching(int timeoutMs)
    {
        var batchers = _batchers;
        _batchers = null;
        if (batchers is null) return;
        long deadline = Environment.TickCount64 + timeoutMs;
        bool stopped = true;
        foreach (var b in batchers) stopped &= b.Stop((int)Math.Max(0, deadline - Environment.TickCount64));
        if (!stopped) throw new MlosException(SmiStatus.Busy, $"model '{Id}': its batch is still running after {timeoutMs} ms");
    }

    /// <summary>Serialises load, unload and unregister of this model.</summary>
    internal Lock AdminLock { get; } = new();

    /// <summary>
    /// Starts a call on the handle: a request on the nested path, or a model-info or resource
    /// call, which needs the model registered but not loaded. The increment comes before the
    /// state check and <see cref="Drain"/> sets the state before it reads the count (both full
    /// fences), so one of them always sees the other. A refused call gives the count back at
    /// once, before any message is built, so that it holds up no unload.
    /// </summary>
    private bool TryEnter(bool needLoaded)
    {
        Interlocked.Increment(ref _inflight);
        int state = Volatile.Read(ref _state);
        if (needLoaded ? state == (int)ModelState.Loaded : state is not ((int)ModelState.Unregistering or (int)ModelState.Unregistered)) return true;
        Interlocked.Decrement(ref _inflight);
        return false;
    }

    private void Exit() => Interlocked.Decrement(ref _inflight);

    /// <summary>
    /// Runs a call on the handle of a registered model (model info, resources), counted as
    /// in flight so that unregister waits for it and no call starts once unregister has begun.
    /// </summary>
    internal T OnHandle<T>(Func<Plugin, nint, T> call)
    {
        if (!TryEnter(needLoaded: false)) throw new MlosException(SmiStatus.NotFound, $"model '{Id}' was unregistered");
        try { return call(Plugin, Handle); }
        finally { Exit(); }
    }

    /// <summary>
    /// Runs <paramref name="call"/> if the model is loaded and keeps unload away meanwhile.
    /// Generic over a struct so that each call site compiles to a direct call.
    /// </summary>
    /// <summary>
    /// Inferences a typed request holds, as Triton counts them: its rows along dim 0 where the
    /// model has a batch dimension (<see cref="MaxRows"/>, Triton's max_batch_size, or every
    /// input's dim 0 left free by its specs), else one. Whether batching is on does not matter.
    /// </summary>
    internal unsafe long RowsOf(SmiTensor* inputs, nuint numInputs) =>
        HasBatchDimension && numInputs > 0 && inputs[0].NDim > 0 && inputs[0].Shape[0] > 1 ? inputs[0].Shape[0] : 1;

    private bool HasBatchDimension => MaxRows > 0 || _freeDim0;

    /// <summary>Every input's dim 0 is free in the cached specs (worked out once, with them).</summary>
    private volatile bool _freeDim0;

    /// <summary>A call of the batcher (its statistics are the batcher's to count): its status, and the plugin call's time in <paramref name="ticks"/>.</summary>
    internal SmiStatus Run<TCall>(ref TCall call, int instance, out long ticks) where TCall : struct, IModelCall
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        var status = RunOnHandle(ref call, instance < 0 ? PickInstance() : instance);
        ticks = System.Diagnostics.Stopwatch.GetTimestamp() - start;
        return status;
    }

    /// <summary>
    /// <see cref="Run"/> for a request that is its own execution (no batcher): counted as both,
    /// from one pair of clock readings; a refusal (not loaded) counts as a failed request.
    /// </summary>
    internal SmiStatus RunRequest<TCall>(ref TCall call) where TCall : struct, IModelCall
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        SmiStatus status;
        try { status = RunOnHandle(ref call, PickInstance()); }
        catch
        {
            long failed = System.Diagnostics.Stopwatch.GetTimestamp();
            Statistics.Alone(false, failed - start, failed, call.Rows);
            throw;
        }
        long end = System.Diagnostics.Stopwatch.GetTimestamp();
        Statistics.Alone(status == SmiStatus.Success, end - start, end, call.Rows);
        return status;
    }

    /// <summary>
    /// The model that took this one's place (a reload, or a newer version when this one was
    /// retired): a request that reached this model as it was being retired runs there instead.
    /// </summary>
    public Model? Successor { get => Volatile.Read(ref _successor); internal set => Volatile.Write(ref _successor, value); }
    private Model? _successor;

    /// <summary>Cumulative request and execution counts and times (the statistics extension).</summary>
    public ModelStatistics Statistics { get; } = new();

    private SmiStatus RunOnHandle<TCall>(ref TCall call, int instance) where TCall : struct, IModelCall
    {
        if (_busy is null) return RunOnHandle(ref call, Handle); // one instance: nothing to count or choose
        Interlocked.Increment(ref _calls[instance]);
        Interlocked.Increment(ref _busy[instance]);
        try { return RunOnHandle(ref call, Handles[instance]); }
        finally { Interlocked.Decrement(ref _busy[instance]); }
    }

    private SmiStatus RunOnHandle<TCall>(ref TCall call, nint handle) where TCall : struct, IModelCall
    {
        var slot = InflightSlots.Mine;
        if (Plugin.Gate is { } gate)
        {
            // Its gate may be the one this thread holds (see PluginCalls).
            if (PluginCalls.Of(slot) is { } inside)
                throw PluginCalls.Reentrant(inside, $"inference on model '{Id}' of plugin '{Plugin.Id}', which is not thread-safe,");
            // A request with a deadline waits for the gate only until then: the call holding it
            // may never return.
            if (call.Deadline == 0) gate.Enter();
            else if (!gate.TryEnter(new Smi.Sdk.SmiDeadline(call.Deadline).RemainingMilliseconds))
                throw new MlosException(SmiStatus.Timeout, $"model '{Id}': the request passed its deadline waiting for plugin '{Plugin.Id}', which runs one call at a time");
            bool runnable = Volatile.Read(ref _state) == (int)ModelState.Loaded;
            try
            {
                if (runnable)
                {
                    slot.Inside = Plugin;
                    try { return call.Invoke(this, handle); }
                    finally { slot.Inside = null; }
                }
            }
            finally { gate.Exit(); }
            throw NotRunnable();
        }
        if (slot.Current is not null) return RunNested(ref call, handle); // a plugin calling back into the core
        Volatile.Write(ref slot.Current, this);
        if (Volatile.Read(ref _state) != (int)ModelState.Loaded)
        {
            slot.Leave(); // before the exception is built: a refused request holds up no unload
            throw NotRunnable();
        }
        try { return call.Invoke(this, handle); } // Current marks the thread as inside Plugin
        finally { slot.Leave(); }
    }

    /// <summary>A request inside another on the same thread: its slot is taken, so count it instead.</summary>
    private SmiStatus RunNested<TCall>(ref TCall call, nint handle) where TCall : struct, IModelCall
    {
        if (!TryEnter(needLoaded: true)) throw NotRunnable();
        try { return call.Invoke(this, handle); } // the outer request's mark stays
        finally { Exit(); }
    }

    internal MlosException NotRunnable()
    {
        var state = State;
        return new(state is ModelState.Unloading or ModelState.Loading ? SmiStatus.Busy : SmiStatus.InvalidState,
            $"model '{Id}' is {state.ToString().ToLowerInvariant()}, not loaded") { Refused = true };
    }

    internal void SetState(ModelState state) => Interlocked.Exchange(ref _state, (int)state);

    /// <summary>
    /// Stops new calls and waits for the ones already admitted, at most <paramref name="timeoutMs"/>:
    /// then it fails with BUSY naming what still runs, and the caller puts the old state back.
    /// Calls refused meanwhile never hold it up: each leaves its mark before it builds its error,
    /// and only the marks present when the new state was published are waited for.
    /// The caller holds <see cref="AdminLock"/>.
    /// </summary>
    internal void Drain(ModelState next, int timeoutMs)
    {
        SetState(next);
        long deadline = Environment.TickCount64 + timeoutMs;
        if (Plugin.Gate is { } gate)
        {
            // A serialised request runs holding the gate and checked the state under it:
            // once we have held it, none can still be running or start.
            if (!gate.TryEnter(timeoutMs))
                throw new MlosException(SmiStatus.Busy, $"model '{Id}': a call into plugin '{Plugin.Id}' is still running after {timeoutMs} ms");
            gate.Exit();
        }
        // Pairs with the plain store-then-load of a request: see InflightSlots.
        Interlocked.MemoryBarrierProcessWide();
        var running = InflightSlots.Running(this);
        var spin = new SpinWait();
        while (Volatile.Read(ref _inflight) != 0 || InflightSlots.StillRunning(running))
        {
            if (Environment.TickCount64 > deadline)
            {
                int threads = running.Count(r => r.StillRunning), counted = Volatile.Read(ref _inflight);
                throw new MlosException(SmiStatus.Busy,
                    $"model '{Id}': {threads + counted} call(s) still running after {timeoutMs} ms" +
                    (threads > 0 ? $" (requests on threads {string.Join(", ", running.Where(r => r.StillRunning).Select(r => r.ThreadName))})" : ""));
            }
            spin.SpinOnce(sleep1Threshold: 20);
        }
    }
}
