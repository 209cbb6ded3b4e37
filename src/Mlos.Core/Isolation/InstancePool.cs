using System.Collections.Concurrent;
using Mlos.Core.Plugins;
using Mlos.Smi.Abi;

namespace Mlos.Core.Isolation;

/// <summary>
/// An isolated plugin with <c>instances</c> &gt; 1: as many host processes, each an
/// <see cref="IsolatedBoundary"/> of its own, behind one boundary. A model is registered, loaded
/// and unloaded on every instance; each inference call goes to the serving instance with the
/// fewest calls running. An instance whose plugin is not thread-safe runs one call at a time
/// (its gate here), so the pool as a whole is thread-safe: N calls of a serialised plugin (the
/// Python bridge, one interpreter per process) run at once, one per process. One instance's
/// crash fails only the calls it ran; the others serve on while it restarts.
/// </summary>
internal sealed unsafe class InstancePool : PluginBoundary
{
    private readonly IsolatedBoundary[] _instances;
    private readonly SemaphoreSlim?[] _gates;
    private readonly int[] _running;
    private readonly ConcurrentDictionary<nint, nint[]> _models = new();
    private long _nextHandle;

    private InstancePool(IsolatedBoundary[] instances)
    {
        _instances = instances;
        var first = instances[0];
        bool serial = !first.Capabilities.HasFlag(SmiCapabilities.ThreadSafe);
        _gates = instances.Select(_ => serial ? new SemaphoreSlim(1, 1) : null).ToArray();
        _running = new int[instances.Length];
    }

    /// <summary>Starts <paramref name="count"/> hosts of the plugin; any that fails to open fails them all.</summary>
    public static InstancePool Start(NativePath? path, string? pluginId, IsolationOptions options, int count)
    {
        var started = new List<IsolatedBoundary>();
        try
        {
            for (int i = 0; i < count; i++) started.Add(IsolatedBoundary.Start(path, pluginId, options));
            return new InstancePool([.. started]);
        }
        catch
        {
            foreach (var b in started) b.Close();
            throw;
        }
    }

    public IsolatedBoundary First => _instances[0];
    public string Path => First.Path;
    public override uint SmiVersion => First.SmiVersion;
    public override string NativeId => First.NativeId;
    /// <summary>The plugin's own, and thread-safe: the pool never runs two calls at once on an instance that is not.</summary>
    public override SmiCapabilities Capabilities => First.Capabilities | SmiCapabilities.ThreadSafe;
    public override PluginEntries Entries => First.Entries;
    public override bool IsAlive => _instances.Any(i => i.IsAlive);

    public override bool LimitCalls(nint handle, int timeoutMs)
    {
        var handles = Handles(handle);
        for (int i = 0; i < _instances.Length; i++) _instances[i].LimitCalls(handles[i], timeoutMs);
        return true;
    }

    public override HostState? Host
    {
        get
        {
            var all = Hosts!;
            var last = all.Where(h => h.LastFailureAt is not null).MaxBy(h => h.LastFailureAt);
            string state = all.All(h => h.State == "serving") ? "serving" : all.Any(h => h.State == "serving") ? "degraded"
                : all.Any(h => h.State == "restarting") ? "restarting" : "down";
            return new HostState(all[0].Pid, state, all.Sum(h => h.Restarts), all.Sum(h => h.Crashes), last?.LastFailure, last?.LastFailureAt);
        }
    }

    public override IReadOnlyList<HostState>? Hosts => _instances.Select(i => i.Host!).ToArray();

    private IsolatedBoundary AnyServing() => _instances.FirstOrDefault(i => i.IsAlive) ?? First;

    /// <summary>Runs <paramref name="call"/> on instance <paramref name="i"/>, holding its gate when it has one.</summary>
    private SmiStatus On(int i, Func<IsolatedBoundary, SmiStatus> call)
    {
        var gate = _gates[i];
        gate?.Wait();
        try { return call(_instances[i]); }
        finally { gate?.Release(); }
    }

    /// <summary>The call on every instance; the first failure is the answer (after all were tried when <paramref name="all"/>).</summary>
    private SmiStatus Each(Func<IsolatedBoundary, int, SmiStatus> call, bool all = false)
    {
        var result = SmiStatus.Success;
        for (int i = 0; i < _instances.Length; i++)
        {
            int k = i;
            var status = On(i, b => call(b, k));
            if (status == SmiStatus.Success) continue;
            if (!all) return status;
            if (result == SmiStatus.Success) result = status;
        }
        return result;
    }

    private nint[] Handles(nint handle) =>
        _models.TryGetValue(handle, out var h) ? h : throw new MlosException(SmiStatus.InvalidParam, $"the plugin has no model with handle {handle}");

    public override (string? Name, string? Version, string? Frameworks) Describe() => AnyServing().Describe();
    public override string? LastError() => First.LastError(); // one per thread, whichever instance failed

    public override SmiStatus Initialize(byte* config) => Each((b, _) => b.Initialize(config));
    public override SmiStatus Cleanup() => Each((b, _) => b.Cleanup(), all: true);

    public override SmiStatus RegisterModel(SmiModelMetadata* metadata, nint* handle)
    {
        var handles = new nint[_instances.Length];
        for (int i = 0; i < _instances.Length; i++)
        {
            SmiStatus status;
            try { status = On(i, b => { nint h; var s = b.RegisterModel(metadata, &h); handles[i] = h; return s; }); }
            catch
            {
                Forget(handles, i);
                throw;
            }
            if (status == SmiStatus.Success) continue;
            Forget(handles, i);
            return status;
        }
        nint ours = (nint)Interlocked.Increment(ref _nextHandle);
        _models[ours] = handles;
        *handle = ours;
        return SmiStatus.Success;
    }

    /// <summary>Unregisters a model from the instances that registered it before another failed.</summary>
    private void Forget(nint[] handles, int count)
    {
        for (int k = 0; k < count; k++)
        {
            try { On(k, b => b.UnregisterModel(handles[k])); }
            catch (MlosException) { } // best effort: the registration fails either way
        }
    }

    public override SmiStatus UnregisterModel(nint handle)
    {
        var handles = Handles(handle);
        var status = Each((b, i) => b.UnregisterModel(handles[i]), all: true);
        if (status == SmiStatus.Success) _models.TryRemove(handle, out _);
        return status;
    }

    public override SmiStatus LoadModel(nint handle, byte* path)
    {
        var handles = Handles(handle);
        return Each((b, i) => b.LoadModel(handles[i], path));
    }

    public override SmiStatus UnloadModel(nint handle)
    {
        var handles = Handles(handle);
        return Each((b, i) => b.UnloadModel(handles[i]), all: true);
    }

    public override SmiStatus AllocateResources(nint handle, SmiResourceReq* requirements, nuint count)
    {
        var handles = Handles(handle);
        return Each((b, i) => b.AllocateResources(handles[i], requirements, count));
    }

    public override SmiStatus DeallocateResources(nint handle)
    {
        var handles = Handles(handle);
        return Each((b, i) => b.DeallocateResources(handles[i]), all: true);
    }

    public override SmiStatus GetModelInfo(nint handle, byte* json, nuint* size)
    {
        var (i, h) = Serving(handle);
        return On(i, b => b.GetModelInfo(h, json, size));
    }

    public override SmiStatus GetModelIo(nint handle, SmiTensorSpec* inputs, nuint* numInputs, SmiTensorSpec* outputs, nuint* numOutputs)
    {
        var (i, h) = Serving(handle);
        return On(i, b => b.GetModelIo(h, inputs, numInputs, outputs, numOutputs));
    }

    private (int, nint) Serving(nint handle)
    {
        var handles = Handles(handle);
        for (int i = 0; i < _instances.Length; i++)
            if (_instances[i].IsAlive) return (i, handles[i]);
        return (0, handles[0]); // none serves: the first says why
    }

    /// <summary>
    /// Runs an inference call on an instance: a free serving one when there is (the fewest calls
    /// running first), else the serving one with the fewest, once its gate is free.
    /// </summary>
    private SmiStatus Run(nint handle, Func<IsolatedBoundary, nint, SmiStatus> call)
    {
        var handles = Handles(handle);
        int pick = -1;
        for (int i = 0; i < _instances.Length; i++)
            if (_instances[i].IsAlive && (pick < 0 || Volatile.Read(ref _running[i]) < Volatile.Read(ref _running[pick]))) pick = i;
        if (pick < 0) pick = 0; // none serves: the first says why
        for (int i = 0; i < _instances.Length && _gates[pick] is { } g && g.CurrentCount == 0; i++)
            if (_instances[i].IsAlive && _gates[i]!.CurrentCount > 0) pick = i;
        Interlocked.Increment(ref _running[pick]);
        try { return On(pick, b => call(b, handles[pick])); }
        finally { Interlocked.Decrement(ref _running[pick]); }
    }

    public override SmiStatus Inference(nint handle, void* input, nuint inputSize, void* output, nuint* outputSize) =>
        Run(handle, (b, h) => b.Inference(h, input, inputSize, output, outputSize));

    public override SmiStatus Infer(nint handle, SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs) =>
        Run(handle, (b, h) => b.Infer(h, inputs, numInputs, outputs, numOutputs));

    public override SmiStatus InferWithDeadline(nint handle, SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs, ulong deadline) =>
        Run(handle, (b, h) => b.InferWithDeadline(h, inputs, numInputs, outputs, numOutputs, deadline));

    public override SmiStatus InferSelected(nint handle, SmiTensor* inputs, nuint numInputs, byte** names, nuint numNames, SmiTensor* outputs, nuint* numOutputs, ulong deadline) =>
        Run(handle, (b, h) => b.InferSelected(h, inputs, numInputs, names, numNames, outputs, numOutputs, deadline));

    public override void Close()
    {
        foreach (var b in _instances) b.Close();
    }
}
