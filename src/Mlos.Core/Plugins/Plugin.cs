using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Core.Plugins;

/// <summary>
/// A plugin the core has loaded and initialised: its entries (a <see cref="PluginBoundary"/>,
/// wherever the plugin runs), the checks of everything they answer, and the lock that serialises
/// calls into it when it does not declare SMI_CAP_THREAD_SAFE. Every call into plugin code goes
/// through here.
/// </summary>
public sealed unsafe class Plugin
{
    private readonly PluginBoundary _boundary;
    private readonly PluginGate? _serial;

    internal Plugin(string id, string path, PluginBoundary boundary)
    {
        Id = id;
        Path = path;
        _boundary = boundary;
        SmiVersion = boundary.SmiVersion;
        NativeId = boundary.NativeId;
        ReadInfo();
        _serial = IsThreadSafe ? null : new PluginGate();
    }

    public string Id { get; }
    public string Path { get; }
    public string NativeId { get; }
    public string Name { get; private set; } = "";
    public string Version { get; private set; } = "";
    public string Frameworks { get; private set; } = "";
    public uint SmiVersion { get; }
    public SmiCapabilities Capabilities => _boundary.Capabilities;
    public bool IsThreadSafe => Capabilities.HasFlag(SmiCapabilities.ThreadSafe);
    public bool HasTypedInfer => _boundary.Has(PluginEntries.Infer);
    public bool HasModelIo => _boundary.Has(PluginEntries.GetModelIo);
    /// <summary>Whether the plugin takes a deadline with typed infer (SMI 1.2), which a model's <c>timeout_ms</c> needs.</summary>
    public bool HasDeadlineInfer => _boundary.Has(PluginEntries.InferWithDeadline);
    /// <summary>
    /// Whether requests are refused when they do not fit the model's specs: for plugins built
    /// against SMI 1.3 or later that do not declare SMI_CAP_ANY_INPUTS. An older plugin could not
    /// say that its specs were defaults only (an echo), so it keeps deciding for itself.
    /// </summary>
    public bool SpecsAreRules => Smi.Abi.SmiVersion.GetMinor(SmiVersion) >= 3 && !Capabilities.HasFlag(SmiCapabilities.AnyInputs);

    /// <summary>Whether the plugin computes only requested outputs (SMI 1.3 infer_selected); without it the core drops the others.</summary>
    public bool HasSelectedInfer => _boundary.Has(PluginEntries.InferSelected);

    /// <summary>Where the plugin's code runs.</summary>
    public Isolation.PluginIsolation Isolation => _boundary.Host is null ? Mlos.Core.Isolation.PluginIsolation.None : Mlos.Core.Isolation.PluginIsolation.Process;
    /// <summary>Whether the plugin can take calls: false while its host process is dead (restarting, or down for good).</summary>
    public bool IsAlive => _boundary.IsAlive;
    /// <summary>Its host process (isolation "process"): pid, state, restarts, last failure; null in process.</summary>
    public Isolation.HostState? Host => _boundary.Host;
    /// <summary>The pid of the plugin's host process, null in process.</summary>
    public int? HostPid => Host?.Pid;
    /// <summary>Every host process (several with <c>instances</c>), null in process.</summary>
    public IReadOnlyList<Isolation.HostState>? Hosts => _boundary.Hosts;

    /// <summary>Lets the plugin go after cleanup (see <see cref="PluginBoundary.Close"/>).</summary>
    internal void Close() => _boundary.Close();

    /// <summary>
    /// How long an admin call (register, load, unload, model info…) waits for the gate of a
    /// serialised plugin before it fails with BUSY: a hung call must not hang every caller.
    /// </summary>
    internal int AdminTimeoutMs { get; set; } = Timeout.Infinite;

    /// <summary>
    /// Whether initialize has run (and succeeded). A plugin found in a plugin folder at start is
    /// only opened and listed; it initializes (loads ONNX Runtime, libtorch…) when the first
    /// model is registered with it (<see cref="EnsureInitialized"/>).
    /// </summary>
    public bool IsInitialized => Volatile.Read(ref _initialized);

    private bool _initialized;
    private string? _pendingConfig;
    private readonly Lock _initLock = new();

    /// <summary>Keeps <paramref name="config"/> for the first <see cref="EnsureInitialized"/>.</summary>
    internal void DeferInitialize(string? config) => _pendingConfig = config;

    /// <summary>
    /// Initializes the plugin with its deferred config if it has not been: exactly once however
    /// many threads register models at the same time (the others wait for it). A failure is
    /// thrown to the caller and the next registration tries again.
    /// </summary>
    internal void EnsureInitialized()
    {
        if (Volatile.Read(ref _initialized)) return;
        lock (_initLock)
        {
            if (_initialized) return;
            Initialize(_pendingConfig);
        }
    }

    internal void Initialize(string? config)
    {
        byte* c = config is null ? null : Utf8.Allocate(config);
        try
        {
            SmiStatus status;
            using (Serial("initialize")) status = _boundary.Initialize(c);
            Check(status, "initialize");
        }
        finally { System.Runtime.InteropServices.NativeMemory.Free(c); }
        ReadInfo(); // a bridge (Python) knows its name only once it has loaded what it serves
        Volatile.Write(ref _initialized, true);
    }

    private void ReadInfo()
    {
        var (name, version, frameworks) = _boundary.Describe();
        Name = name ?? Id;
        Version = version ?? "";
        Frameworks = frameworks ?? "";
    }

    /// <summary>Calls cleanup if the plugin has one; failures are reported, not thrown.</summary>
    internal string? Cleanup()
    {
        if (!_boundary.Has(PluginEntries.Cleanup) || !IsInitialized) return null; // never initialized: nothing to clean up
        SmiStatus status;
        try
        {
            using (Serial("cleanup")) status = _boundary.Cleanup();
        }
        catch (MlosException e) { return e.Message; }
        return status == SmiStatus.Success ? null : Failure(status, "cleanup").Message;
    }

    /// <summary>A model's own <c>call_timeout_ms</c> (see <see cref="PluginBoundary.LimitCalls"/>); false in process.</summary>
    internal bool LimitCalls(nint handle, int timeoutMs) => _boundary.LimitCalls(handle, timeoutMs);

    internal nint Register(SmiModelMetadata* metadata)
    {
        nint handle = 0;
        SmiStatus status;
        using (Serial("register_model")) status = _boundary.RegisterModel(metadata, &handle);
        Check(status, "register_model");
        return handle;
    }

    internal void Unregister(nint handle)
    {
        if (!_boundary.Has(PluginEntries.UnregisterModel)) return; // optional: nothing to forget
        SmiStatus status;
        using (Serial("unregister_model")) status = _boundary.UnregisterModel(handle);
        Check(status, "unregister_model");
    }

    internal void Load(nint handle, NativePath? path)
    {
        if (!_boundary.Has(PluginEntries.LoadModel)) return; // optional: the plugin needs no load step
        fixed (byte* p = path?.Terminated)
        {
            SmiStatus status;
            using (Serial("load_model")) status = _boundary.LoadModel(handle, p);
            Check(status, "load_model");
        }
    }

    internal void Unload(nint handle)
    {
        if (!_boundary.Has(PluginEntries.UnloadModel)) return;
        SmiStatus status;
        using (Serial("unload_model")) status = _boundary.UnloadModel(handle);
        Check(status, "unload_model");
    }

    internal void Allocate(nint handle, SmiResourceReq* requirements, nuint count)
    {
        if (!_boundary.Has(PluginEntries.AllocateResources))
            throw new MlosException(SmiStatus.NotSupported, $"plugin '{Id}' does not take resource requests");
        SmiStatus status;
        using (Serial("allocate_resources")) status = _boundary.AllocateResources(handle, requirements, count);
        Check(status, "allocate_resources");
    }

    internal void Deallocate(nint handle)
    {
        if (!_boundary.Has(PluginEntries.DeallocateResources)) return; // optional: nothing was taken
        SmiStatus status;
        using (Serial("deallocate_resources")) status = _boundary.DeallocateResources(handle);
        Check(status, "deallocate_resources");
    }

    /// <summary>Most bytes of model info taken from a plugin.</summary>
    private const int MaxInfoBytes = 16 << 20;

    internal string? ModelInfo(nint handle)
    {
        if (!_boundary.Has(PluginEntries.GetModelInfo)) return null;
        nuint size = 4096;
        for (int attempt = 0; ; attempt++)
        {
            var buffer = new byte[(int)size];
            SmiStatus status;
            nuint n = size;
            fixed (byte* b = buffer)
            {
                using (Serial("get_model_info")) status = _boundary.GetModelInfo(handle, b, &n);
            }
            if (status == SmiStatus.Success)
            {
                if (n > size) throw PluginAnswers.Broke(Id, "get_model_info", $"it reported {n} bytes written into a buffer of {size}");
                var text = buffer.AsSpan(0, (int)n);
                int end = text.IndexOf((byte)0);
                return System.Text.Encoding.UTF8.GetString(end >= 0 ? text[..end] : text);
            }
            if (status is SmiStatus.BufferTooSmall or SmiStatus.OutOfMemory && n > size)
            {
                if (n > MaxInfoBytes) throw PluginAnswers.Broke(Id, "get_model_info", $"it asked for {n} bytes of model info; at most {MaxInfoBytes} are taken");
                if (attempt < 3) { size = n; continue; }
            }
            Check(status, "get_model_info");
            throw PluginAnswers.Broke(Id, "get_model_info", "it kept asking for a larger buffer");
        }
    }

    internal SmiModelIo? ModelIo(nint handle)
    {
        if (!_boundary.Has(PluginEntries.GetModelIo)) return null;
        nuint nIn = 0, nOut = 0;
        for (int attempt = 0; ; attempt++)
        {
            SmiStatus status;
            if (nIn > PluginAnswers.MaxTensors || nOut > PluginAnswers.MaxTensors)
                throw PluginAnswers.Broke(Id, "get_model_io", $"it reported {nIn} inputs and {nOut} outputs; no model has more than {PluginAnswers.MaxTensors}");
            var inputs = new SmiTensorSpec[(int)nIn];
            var outputs = new SmiTensorSpec[(int)nOut];
            nuint capIn = nIn, capOut = nOut;
            fixed (SmiTensorSpec* i = inputs)
            fixed (SmiTensorSpec* o = outputs)
            {
                using (Serial("get_model_io")) status = _boundary.GetModelIo(handle, i, &nIn, o, &nOut);
            }
            if (status == SmiStatus.Success && nIn <= capIn && nOut <= capOut)
            {
                if (nIn < capIn || nOut < capOut)
                {
                    inputs = inputs[..(int)nIn];
                    outputs = outputs[..(int)nOut];
                }
                CheckSpecs(inputs, "input");
                CheckSpecs(outputs, "output");
                return new SmiModelIo(inputs, outputs);
            }
            // Asked with too small arrays (the first call always is, unless the model has no tensors):
            // ask again with the counts it gave, a few times in case they change meanwhile.
            if ((status == SmiStatus.BufferTooSmall || status == SmiStatus.Success) && attempt < 3) continue;
            if (status == SmiStatus.Success) throw PluginAnswers.Broke(Id, "get_model_io", $"it reported {nIn} inputs and {nOut} outputs for arrays of {capIn} and {capOut}");
            Check(status, "get_model_io");
        }
    }

    private void CheckSpecs(SmiTensorSpec[] specs, string what)
    {
        for (int i = 0; i < specs.Length; i++)
            if (PluginAnswers.SpecProblem(in specs[i]) is { } problem)
                throw PluginAnswers.Broke(Id, "get_model_io", $"{what} {i} {problem}");
    }

    /// <summary>
    /// The lock that serialises calls into a plugin without SMI_CAP_THREAD_SAFE; null for a
    /// thread-safe one. Inference calls take it in <see cref="Models.Model.Run"/>.
    /// </summary>
    internal PluginGate? Gate => _serial;

    /// <summary>
    /// Untyped inference, caller's buffers straight to the plugin; the caller holds <see cref="Gate"/>
    /// if any. A success that claims more bytes than the buffer holds is the plugin's breach.
    /// </summary>
    internal SmiStatus InferenceCall(nint handle, void* input, nuint inputSize, void* output, nuint* outputSize)
    {
        nuint capacity = *outputSize;
        var status = _boundary.Inference(handle, input, inputSize, output, outputSize);
        if (status == SmiStatus.Success && *outputSize > capacity)
            throw PluginAnswers.Broke(Id, "inference", $"it reported {*outputSize} output bytes for a buffer of {capacity}");
        return status;
    }

    /// <summary>
    /// Typed inference; the caller has checked <see cref="HasTypedInfer"/> and holds <see cref="Gate"/>
    /// if any. The outputs come back checked (<see cref="PluginAnswers.CheckOutputs"/>); on any
    /// failure nothing the plugin allocated is left in them.
    /// </summary>
    [System.Runtime.CompilerServices.SkipLocalsInit] // Record fills every lent slot: no need to zero them first
    internal SmiStatus InferCall(nint handle, SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs, ulong deadline, in Models.OutputSelection selection)
    {
        // The plugin sees no more slots than the core checks; the caller's count changes only
        // where the plugin changes it.
        nuint capacity = Math.Min(*numOutputs, (nuint)PluginAnswers.MaxTensors), count = capacity;
        // On the stack for the capacities callers use (the server and the batcher pass 64).
        Span<PluginAnswers.Lent> lent = capacity <= 64 ? stackalloc PluginAnswers.Lent[(int)capacity] : new PluginAnswers.Lent[(int)capacity];
        PluginAnswers.Record(outputs, lent);
        if (!selection.IsAll && PluginAnswers.HasCallerBuffers(lent))
            throw new MlosException(SmiStatus.InvalidParam, "requested outputs need empty output slots (the plugin allocates them)");
        bool selects = !selection.IsAll && HasSelectedInfer;
        var status = selects
            ? _boundary.InferSelected(handle, inputs, numInputs, selection.Names, (nuint)selection.Count, outputs, &count, deadline)
            : deadline != 0
                ? _boundary.InferWithDeadline(handle, inputs, numInputs, outputs, &count, deadline)
                : _boundary.Infer(handle, inputs, numInputs, outputs, &count);
        if (status != SmiStatus.Success)
        {
            PluginAnswers.ReleaseLeftovers(outputs, lent);
            if (status == SmiStatus.BufferTooSmall && count > capacity) *numOutputs = count; // the count needed
            return status;
        }
        if (PluginAnswers.CheckOutputs(Id, outputs, count, lent) is { } breach) throw breach;
        if (!selection.IsAll) count = PluginAnswers.KeepSelected(Id, outputs, count, selection, strict: selects);
        *numOutputs = count;
        return status;
    }

    /// <summary>
    /// The exception for a failed call, with the plugin's own message when it keeps one. A status
    /// outside smi_status_t becomes RUNTIME, with the raw value in the message.
    /// </summary>
    internal MlosException Failure(SmiStatus status, string entry)
    {
        string? detail = _boundary.LastError();
        var known = PluginAnswers.Known(status);
        var text = known == status
            ? $"plugin '{Id}' {entry} failed: {MlosException.Describe(status)}"
            : $"plugin '{Id}' {entry} failed with status {(int)status}, which is not an SMI status";
        return new MlosException(known, detail is null ? text : $"{text}: {detail}");
    }

    private void Check(SmiStatus status, string entry)
    {
        if (status != SmiStatus.Success) throw Failure(status, entry);
    }

    /// <summary>
    /// Holds the plugin's gate for a block when it is not thread-safe, waiting at most
    /// <see cref="AdminTimeoutMs"/>, and marks the thread as inside the plugin meanwhile.
    /// </summary>
    private SerialScope Serial(string entry)
    {
        if (_serial is { } gate && !gate.TryEnter(AdminTimeoutMs))
            throw new MlosException(SmiStatus.Busy, $"plugin '{Id}' {entry}: another call into the plugin is still running after {AdminTimeoutMs} ms");
        return new SerialScope(_serial, PluginCalls.Enter(this));
    }

    private readonly ref struct SerialScope
    {
        private readonly PluginGate? _gate;
        private readonly PluginCalls.Scope _inside;

        public SerialScope(PluginGate? gate, PluginCalls.Scope inside)
        {
            _gate = gate;
            _inside = inside;
        }

        public void Dispose()
        {
            _inside.Dispose();
            _gate?.Exit();
        }
    }
}
