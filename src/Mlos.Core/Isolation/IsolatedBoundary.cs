using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Mlos.Core.Isolation.Wire;
using Mlos.Core.Plugins;
using Mlos.Smi.Abi;

namespace Mlos.Core.Isolation;

/// <summary>
/// A plugin that runs in a <c>mlos_plugin_host</c> process of its own (<see cref="HostProcess"/>):
/// each entry is a request on a channel, with tensor data in the channel's shared region. What the
/// host answers is read as a stranger's (bounds, counts, sizes: <see cref="WireReader"/>), and
/// <see cref="Plugin"/> then checks it exactly as it checks a plugin in process. Model handles the
/// core sees are indexes into a table of this boundary, not the host's pointers.
/// </summary>
internal sealed unsafe class IsolatedBoundary : PluginBoundary
{
    [ThreadStatic] private static string? t_lastError;

    private readonly HostSupervisor _supervisor;
    private readonly string _pluginId;
    private readonly ConcurrentDictionary<nint, RemoteModel> _models = new();
    private long _nextHandle;
    /// <summary>Orders what a restart replays against the calls that change models (register, load, unload, unregister).</summary>
    private readonly Lock _stateLock = new();
    /// <summary>The config initialize succeeded with (null bytes: none), replayed to a restarted host; null until then.</summary>
    private volatile Holder? _initialized;

    private sealed record Holder(byte[]? Config);

    private IsolatedBoundary(HostSupervisor supervisor, string pluginId)
    {
        _supervisor = supervisor;
        _pluginId = pluginId;
        supervisor.PluginId = pluginId;
        supervisor.Replay = Replay;
        var plugin = supervisor.Plugin;
        SmiVersion = plugin.SmiVersion;
        Capabilities = plugin.Capabilities;
        Entries = plugin.Entries;
        NativeId = plugin.NativeId;
        Path = plugin.Path;
    }

    public override uint SmiVersion { get; }
    public override string NativeId { get; }
    public override SmiCapabilities Capabilities { get; }
    public override PluginEntries Entries { get; }
    /// <summary>The plugin file as the host opened it (absolute).</summary>
    public string Path { get; }
    public override bool IsAlive => _supervisor.IsServing;
    public override HostState? Host => _supervisor.State;

    /// <summary>
    /// Starts a host for <paramref name="path"/> and opens the plugin there with the core's loader
    /// and checks; throws what the loader threw (not found, not an SMI plugin, wrong major…).
    /// <paramref name="pluginId"/> null: the plugin's own id, as in process.
    /// </summary>
    public static IsolatedBoundary Start(NativePath? path, string? pluginId, IsolationOptions options)
    {
        if (path is null || path.Text.Trim().Length == 0)
            throw new MlosException(SmiStatus.InvalidParam, "plugin path must not be empty");
        var supervisor = HostSupervisor.Start(path.Absolute(), pluginId, options);
        return new IsolatedBoundary(supervisor, pluginId ?? supervisor.Plugin.NativeId);
    }

    // ---- one call: a channel of the current host, a request, the answer ----

    /// <summary>The host a call runs on and the channel it took there.</summary>
    private readonly struct Call(HostProcess host, WireChannel lane)
    {
        public readonly HostProcess Host = host;
        public readonly WireChannel Lane = lane;
        public void Return() => Host.Return(Lane);
    }

    private Call Begin() => Begin(null);

    /// <summary>A channel of <paramref name="host"/> (a restarted host being brought back), or of the current host when it serves.</summary>
    private Call Begin(HostProcess? host)
    {
        if (host is null)
        {
            if (_supervisor.Refusal() is { } refused) throw refused;
            host = _supervisor.Current;
        }
        return new Call(host, host.Rent());
    }

    /// <summary>
    /// Sends the request written at the channel's <see cref="WireChannel.MessageStart"/> and waits for the answer (at most
    /// <paramref name="timeoutMs"/>, 0: no limit; past it the host is killed). The channel stays
    /// the caller's on return; on a throw it has been given back (or closed, when the host did not
    /// answer). The plugin's message, if any, becomes this thread's last error.
    /// </summary>
    private WireReader Exchange(Call call, WireOp op, uint length, string during, out SmiStatus status, int timeoutMs = 0)
    {
        var lane = call.Lane;
        WireFrame frame = default;
        bool timedOut = false;
        if (!lane.Send(op, lane.MessageStart, length) || !lane.Receive(out frame, timeoutMs, out timedOut) || frame.Op != op)
        {
            call.Host.Discard(lane);
            if (!timedOut) throw call.Host.Gone(_pluginId, during);
            call.Host.Kill($"it ran past its call_timeout_ms of {timeoutMs} {during}");
            throw new MlosException(SmiStatus.Timeout, $"plugin '{_pluginId}' ran past its call_timeout_ms of {timeoutMs} {during}: its host process was stopped");
        }
        try
        {
            var r = lane.Reader(frame);
            var message = r.String();
            if (frame.Flags.HasFlag(WireFlags.HostFailure))
                throw new MlosException(WireStatus.OfHostFailure(frame.Status), message ?? $"the plugin host failed {during}");
            t_lastError = message;
            status = (SmiStatus)frame.Status;
            return r;
        }
        catch
        {
            call.Return();
            throw;
        }
    }

    /// <summary>An entry with a status only: the request written by <paramref name="write"/>, nothing read back but the status.</summary>
    private SmiStatus Simple(WireOp op, string during, WriteRequest write, ReadAnswer? read = null, HostProcess? on = null)
    {
        var call = Begin(on);
        var w = new WireWriter(call.Lane.Region, call.Lane.MessageStart);
        try { write(ref w); }
        catch
        {
            call.Return();
            throw;
        }
        var r = Exchange(call, op, w.Length, during, out var status);
        try
        {
            if (status == SmiStatus.Success) read?.Invoke(ref r);
            return status;
        }
        finally { call.Return(); }
    }

    private delegate void WriteRequest(ref WireWriter w);
    private delegate void ReadAnswer(ref WireReader r);

    private RemoteModel Model(nint handle) =>
        _models.TryGetValue(handle, out var m) ? m : throw new MlosException(SmiStatus.InvalidParam, $"plugin '{_pluginId}' has no model with handle {handle}");

    public override bool LimitCalls(nint handle, int timeoutMs)
    {
        Model(handle).CallTimeoutMs = timeoutMs;
        return true;
    }

    /// <summary>How long an inference call of <paramref name="model"/> may run: its own limit, else the plugin's (0: none).</summary>
    private int CallTimeout(RemoteModel model) => model.CallTimeoutMs > 0 ? model.CallTimeoutMs : _supervisor.Options.CallTimeoutMs;

    private static string During(RemoteModel m, string entry) => $"during {entry} of model '{m.Name}'";

    /// <summary>
    /// Brings a restarted host to where the last one was: initialize with the config that
    /// succeeded, every registered model registered again (its new handle kept), loaded again
    /// where it was loaded, and given the resources it held (before or after the load, as they
    /// were). Any failure fails the restart (the supervisor counts it).
    /// </summary>
    private void Replay(HostProcess host, Action publish)
    {
        lock (_stateLock)
        {
            ReplayTo(host);
            publish(); // before the lock goes: a change made from now on goes to this host
        }
    }

    private void ReplayTo(HostProcess host)
    {
        void Must(SmiStatus status, string what)
        {
            if (status != SmiStatus.Success)
                throw new MlosException(PluginAnswers.Known(status), $"{what} failed again: {MlosException.Describe(status)}{(t_lastError is { } e ? ": " + e : "")}");
        }
        if (_initialized is { } init)
            Must(Simple(WireOp.Initialize, "during initialize", (ref WireWriter w) => Bytes(ref w, init.Config), on: host), "initialize");
        foreach (var model in _models.Values)
        {
            var m = model.Registered;
            ulong handle = 0;
            Must(Simple(WireOp.Register, $"during register_model of model '{model.Name}'", (ref WireWriter w) =>
            {
                Bytes(ref w, m.Name); Bytes(ref w, m.Framework); Bytes(ref w, m.Version); Bytes(ref w, m.Path); Bytes(ref w, m.Config);
            }, (ref WireReader r) => handle = r.U64(), host), $"register_model of model '{model.Name}'");
            model.HostHandle = handle;
            var allocated = model.Allocated;
            void Allocate() => Must(Simple(WireOp.Allocate, During(model, "allocate_resources"),
                (ref WireWriter w) => WriteAllocation(ref w, handle, allocated!.Requirements), on: host), $"allocate_resources of model '{model.Name}'");
            if (allocated is { AfterLoad: false }) Allocate();
            if (model.Loaded is { } loaded)
                Must(Simple(WireOp.Load, During(model, "load_model"), (ref WireWriter w) => { w.U64(handle); Bytes(ref w, loaded.Path); }, on: host),
                    $"load_model of model '{model.Name}'");
            if (allocated is { AfterLoad: true }) Allocate();
        }
    }

    private static void Bytes(ref WireWriter w, byte[]? text)
    {
        if (text is null) w.Text((byte*)null);
        else w.Bytes(text);
    }

    private static byte[]? Copy(byte* text) =>
        text == null ? null : System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(text).ToArray();

    // ---- the entries ----

    public override (string? Name, string? Version, string? Frameworks) Describe()
    {
        (string?, string?, string?) answer = default;
        Simple(WireOp.Describe, "while describing itself", static (ref WireWriter w) => { }, (ref WireReader r) => answer = (r.String(), r.String(), r.String()));
        return answer;
    }

    public override string? LastError() => t_lastError;

    public override SmiStatus Initialize(byte* config)
    {
        var status = Simple(WireOp.Initialize, "during initialize", (ref WireWriter w) => w.Text(config));
        if (status == SmiStatus.Success) _initialized = new Holder(Copy(config));
        return status;
    }

    public override SmiStatus Cleanup() => GiveBack(() => Simple(WireOp.Cleanup, "during cleanup", static (ref WireWriter w) => { }));

    /// <summary>
    /// An entry that gives something back (cleanup, deallocate): a host that is gone has given
    /// everything back already, so it succeeds, and the core can let go cleanly.
    /// </summary>
    private SmiStatus GiveBack(Func<SmiStatus> call)
    {
        if (!_supervisor.IsServing) return SmiStatus.Success;
        try { return call(); }
        catch (MlosException) when (!_supervisor.IsServing) { return SmiStatus.Success; }
    }

    /// <summary>
    /// The host a model-changing call goes to, checked to serve: the change is recorded (under
    /// <see cref="_stateLock"/>) only if that host is still the current one, so a restart's replay
    /// and the record never miss each other (see <see cref="Replay"/>).
    /// </summary>
    private HostProcess Serving()
    {
        if (_supervisor.Refusal() is { } refused) throw refused;
        return _supervisor.Current;
    }

    private MlosException RestartedDuring(string what) =>
        new(SmiStatus.Busy, $"plugin '{_pluginId}' restarted during {what}; try again");

    public override SmiStatus RegisterModel(SmiModelMetadata* metadata, nint* handle)
    {
        var m = *metadata;
        ulong hostHandle = 0;
        string name = Mlos.Smi.Sdk.Utf8.Read(m.Name) ?? "";
        var host = Serving();
        var status = Simple(WireOp.Register, $"during register_model of model '{name}'", (ref WireWriter w) =>
        {
            w.Text(m.Name);
            w.Text(m.Framework);
            w.Text(m.Version);
            w.Text(m.Path);
            w.Text(m.Config);
        }, (ref WireReader r) => hostHandle = r.U64(), host);
        if (status != SmiStatus.Success) return status;
        lock (_stateLock)
        {
            if (host != _supervisor.Current) throw RestartedDuring($"register_model of model '{name}'");
            nint ours = (nint)Interlocked.Increment(ref _nextHandle);
            _models[ours] = new RemoteModel(hostHandle, name, new RemoteModel.Registration(Copy(m.Name), Copy(m.Framework), Copy(m.Version), Copy(m.Path), Copy(m.Config)));
            *handle = ours;
        }
        return status;
    }

    public override SmiStatus UnregisterModel(nint handle)
    {
        var model = Model(handle);
        var status = Release(model, "unregister_model", WireOp.Unregister, () =>
        {
            // Its names go with it, as a plugin in process frees them (they are valid while the model is registered).
            if (_models.TryRemove(handle, out var gone)) gone.Dispose();
        });
        return status;
    }

    public override SmiStatus LoadModel(nint handle, byte* path)
    {
        var model = Model(handle);
        var host = Serving();
        var status = Simple(WireOp.Load, During(model, "load_model"), (ref WireWriter w) => { w.U64(model.HostHandle); w.Text(path); }, on: host);
        if (status != SmiStatus.Success) return status;
        lock (_stateLock)
        {
            if (host != _supervisor.Current) throw RestartedDuring($"load_model of model '{model.Name}'");
            model.Loaded = new RemoteModel.LoadState(Copy(path));
        }
        return status;
    }

    public override SmiStatus UnloadModel(nint handle)
    {
        var model = Model(handle);
        return Release(model, "unload_model", WireOp.Unload, () => model.Loaded = null);
    }

    /// <summary>
    /// Unload or unregister: sent to the host that serves, and recorded. A host that is not serving
    /// has let everything go already: recorded only. Should a restart have replayed the model on a
    /// new host meanwhile, the call goes to that one too.
    /// </summary>
    private SmiStatus Release(RemoteModel model, string entry, WireOp op, Action record)
    {
        for (int attempt = 0; ; attempt++)
        {
            HostProcess host;
            lock (_stateLock)
            {
                if (!_supervisor.IsServing)
                {
                    record();
                    return SmiStatus.Success;
                }
                host = _supervisor.Current;
            }
            SmiStatus status;
            try { status = Simple(op, During(model, entry), (ref WireWriter w) => w.U64(model.HostHandle), on: host); }
            catch (MlosException) when (!host.IsAlive) { status = SmiStatus.Success; }
            if (status != SmiStatus.Success) return status;
            lock (_stateLock)
            {
                if (host == _supervisor.Current || attempt > 0)
                {
                    record();
                    return status;
                }
            }
        }
    }

    public override SmiStatus AllocateResources(nint handle, SmiResourceReq* requirements, nuint count)
    {
        var model = Model(handle);
        if (count > (nuint)PluginAnswers.MaxTensors)
            throw new MlosException(SmiStatus.InvalidParam, $"at most {PluginAnswers.MaxTensors} resource requirements are taken");
        var given = new ReadOnlySpan<SmiResourceReq>(requirements, (int)count).ToArray(); // kept for a restart
        var host = Serving();
        var status = Simple(WireOp.Allocate, During(model, "allocate_resources"), (ref WireWriter w) => WriteAllocation(ref w, model.HostHandle, given), on: host);
        if (status != SmiStatus.Success) return status;
        lock (_stateLock)
        {
            if (host != _supervisor.Current) throw RestartedDuring($"allocate_resources of model '{model.Name}'");
            model.Allocated = new RemoteModel.Allocation(given, AfterLoad: model.Loaded is not null);
        }
        return status;
    }

    private static void WriteAllocation(ref WireWriter w, ulong hostHandle, SmiResourceReq[] requirements)
    {
        w.U64(hostHandle);
        w.U32((uint)requirements.Length);
        foreach (var r in requirements)
        {
            w.U32((uint)r.Type);
            w.I32(r.DeviceId);
            w.U64(r.Amount);
        }
    }

    public override SmiStatus DeallocateResources(nint handle)
    {
        var model = Model(handle);
        // A host that is gone has given everything back already: recorded only.
        return Release(model, "deallocate_resources", WireOp.Deallocate, () => model.Allocated = null);
    }

    public override SmiStatus GetModelInfo(nint handle, byte* json, nuint* size)
    {
        var model = Model(handle);
        ulong capacity = *size;
        var call = Begin();
        var w = new WireWriter(call.Lane.Region, call.Lane.MessageStart);
        w.U64(model.HostHandle);
        w.U64(capacity);
        var r = Exchange(call, WireOp.ModelInfo, w.Length, During(model, "get_model_info"), out var status);
        return CopyOut(ref r, call, status, json, size);
    }

    public override SmiStatus GetModelIo(nint handle, SmiTensorSpec* inputs, nuint* numInputs, SmiTensorSpec* outputs, nuint* numOutputs)
    {
        var model = Model(handle);
        ulong capIn = *numInputs, capOut = *numOutputs;
        var call = Begin();
        var w = new WireWriter(call.Lane.Region, call.Lane.MessageStart);
        w.U64(model.HostHandle);
        w.U64(capIn);
        w.U64(capOut);
        var r = Exchange(call, WireOp.ModelIo, w.Length, During(model, "get_model_io"), out var status);
        try
        {
            ulong nIn = r.U64(), nOut = r.U64();
            if (r.U32() == 1)
            {
                if (nIn > capIn || nOut > capOut) throw WireReader.Malformed($"it sent {nIn} and {nOut} specs for arrays of {capIn} and {capOut}");
                ReadSpecs(ref r, model, inputs, nIn);
                ReadSpecs(ref r, model, outputs, nOut);
            }
            *numInputs = (nuint)nIn;
            *numOutputs = (nuint)nOut;
            return status;
        }
        finally { call.Return(); }
    }

    private static void ReadSpecs(ref WireReader r, RemoteModel model, SmiTensorSpec* specs, ulong count)
    {
        for (ulong i = 0; i < count; i++)
        {
            var name = r.Text(out int length);
            specs[i].Name = name == null ? null : model.Intern(new ReadOnlySpan<byte>(name, length));
            specs[i].Dtype = (SmiDtype)r.U32();
            specs[i].NDim = r.U32();
            for (int d = 0; d < Mlos.Smi.Abi.SmiVersion.MaxDims; d++) specs[i].Shape[d] = r.I64();
        }
    }

    public override SmiStatus Inference(nint handle, void* input, nuint inputSize, void* output, nuint* outputSize)
    {
        var model = Model(handle);
        ulong capacity = *outputSize;
        var call = Begin();
        WireReader r;
        SmiStatus status;
        bool sent = false;
        try
        {
            var w = new WireWriter(call.Lane.Region, call.Lane.MessageStart);
            w.U64(model.HostHandle);
            w.U64(capacity);
            w.U64(inputSize);
            ulong blob = w.Blob(inputSize);
            if (inputSize > 0) Buffer.MemoryCopy(input, w.At(blob), inputSize, inputSize);
            sent = true;
            r = Exchange(call, WireOp.Inference, w.Length, $"while running model '{model.Name}'", out status, CallTimeout(model));
        }
        catch when (!sent)
        {
            call.Return(); // the request never went: the channel is as it was
            throw;
        }
        return CopyOut(ref r, call, status, output, outputSize);
    }

    /// <summary>
    /// An answer of bytes the host wrote into the region (untyped output, model info): copied to
    /// the caller's buffer of *<paramref name="size"/> bytes when it fits and the call succeeded;
    /// *<paramref name="size"/> becomes what the plugin reported, for the checks above to judge.
    /// </summary>
    private static SmiStatus CopyOut(ref WireReader r, Call call, SmiStatus status, void* buffer, nuint* size)
    {
        try
        {
            ulong capacity = *size, n = r.U64(), at = r.U64();
            if (status == SmiStatus.Success && n <= capacity && n > 0)
                Buffer.MemoryCopy(r.Data(at, n), buffer, capacity, n);
            *size = (nuint)n;
            return status;
        }
        finally { call.Return(); }
    }

    public override SmiStatus Infer(nint handle, SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs) =>
        Typed(handle, inputs, numInputs, null, 0, outputs, numOutputs, 0, mode: 0);

    public override SmiStatus InferWithDeadline(nint handle, SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs, ulong deadline) =>
        Typed(handle, inputs, numInputs, null, 0, outputs, numOutputs, deadline, mode: 1);

    public override SmiStatus InferSelected(nint handle, SmiTensor* inputs, nuint numInputs, byte** names, nuint numNames, SmiTensor* outputs, nuint* numOutputs, ulong deadline) =>
        Typed(handle, inputs, numInputs, names, numNames, outputs, numOutputs, deadline, mode: 2);

    private SmiStatus Typed(nint handle, SmiTensor* inputs, nuint numInputs, byte** names, nuint numNames, SmiTensor* outputs, nuint* numOutputs, ulong deadline, uint mode)
    {
        var model = Model(handle);
        uint capacity = (uint)Math.Min(*numOutputs, (nuint)PluginAnswers.MaxTensors);
        var call = Begin();
        WireReader r;
        SmiStatus status;
        bool sent = false;
        try
        {
            var w = new WireWriter(call.Lane.Region, call.Lane.MessageStart);
            ulong scratch = 64;
            uint lent = 0;
            for (uint i = 0; i < capacity; i++)
                if (outputs[i].Data != null) { lent++; scratch += (((ulong)outputs[i].ByteSize + 63) & ~63UL) + 64; }
            w.U64(model.HostHandle);
            w.U64(deadline);
            w.U32(mode);
            w.U32(capacity);
            w.U64(scratch);
            w.U32(lent);
            for (uint i = 0; i < capacity; i++)
                if (outputs[i].Data != null) { w.U32(i); w.U64(outputs[i].ByteSize); }
            w.U32((uint)numNames);
            for (nuint k = 0; k < numNames; k++) w.Text(names[k]);
            w.U32((uint)numInputs);
            for (nuint k = 0; k < numInputs; k++)
            {
                SmiTensor* t = &inputs[k];
                if (t->MemoryType == SmiMemoryType.Gpu)
                    throw new MlosException(SmiStatus.NotSupported, $"plugin '{_pluginId}' runs in a process of its own, which takes inputs in host memory only");
                w.Text(t->Name);
                w.U32((uint)t->Dtype);
                w.U32(Math.Min(t->NDim, (uint)Mlos.Smi.Abi.SmiVersion.MaxDims));
                foreach (long d in t->Dims) w.I64(d);
                w.I32(t->DeviceId);
                w.U64(t->ByteSize);
                ulong blob = w.Blob(t->ByteSize);
                if (t->ByteSize > 0) Buffer.MemoryCopy(t->Data, w.At(blob), t->ByteSize, t->ByteSize);
            }
            sent = true;
            r = Exchange(call, WireOp.Infer, w.Length, $"while running model '{model.Name}'", out status, CallTimeout(model));
        }
        catch when (!sent)
        {
            call.Return(); // the request never went: the channel is as it was
            throw;
        }
        return status == SmiStatus.Success
            ? ReadOutputs(ref r, call, model, outputs, numOutputs, capacity)
            : ReadFailure(ref r, call, outputs, numOutputs, capacity, status);
    }

    private static SmiStatus ReadFailure(ref WireReader r, in Call call, SmiTensor* outputs, nuint* numOutputs, uint capacity, SmiStatus status)
    {
        try
        {
            ulong count = r.U64();
            uint sizes = r.U32();
            for (uint k = 0; k < sizes; k++)
            {
                uint index = r.U32();
                ulong needed = r.U64();
                if (index < capacity && outputs[index].Data != null) outputs[index].ByteSize = (nuint)needed;
            }
            *numOutputs = (nuint)count;
            return status;
        }
        finally { call.Return(); }
    }

    /// <summary>
    /// The outputs of a successful call: a caller's buffer gets its output copied in; an output the
    /// plugin allocated stays in the region, lent until released (<see cref="OutputLease"/>).
    /// A count past the capacity is passed on unread, for <see cref="Plugin"/> to call a breach.
    /// </summary>
    private static SmiStatus ReadOutputs(ref WireReader r, in Call call, RemoteModel model, SmiTensor* outputs, nuint* numOutputs, uint capacity)
    {
        var lease = new OutputLease(call.Host, call.Lane);
        int made = 0;
        try
        {
            ulong count = r.U64();
            if (count > capacity)
            {
                *numOutputs = (nuint)count;
                return SmiStatus.Success;
            }
            for (; made < (int)count; made++)
            {
                SmiTensor* t = &outputs[made];
                void* callerBuffer = t->Data;
                nuint callerBytes = t->ByteSize;
                var name = r.Text(out int length);
                t->Name = name == null ? null : model.Intern(new ReadOnlySpan<byte>(name, length));
                t->Dtype = (SmiDtype)r.U32();
                uint ndim = r.U32();
                if (ndim > Mlos.Smi.Abi.SmiVersion.MaxDims) throw WireReader.Malformed($"output {made} has {ndim} dimensions");
                t->NDim = ndim;
                for (int d = 0; d < (int)ndim; d++) t->Shape[d] = r.I64();
                t->MemoryType = SmiMemoryType.Cpu;
                t->DeviceId = 0;
                ulong bytes = r.U64();
                t->ByteSize = (nuint)bytes;
                switch (r.U32())
                {
                    case 0: // no data (a breach the check names, unless the output is empty)
                        if (callerBuffer != null) throw WireReader.Malformed($"output {made} dropped the caller's buffer");
                        t->Data = null;
                        break;
                    case 1: // written into the caller's buffer, in the region: copied to the caller's own
                        ulong at = r.U64();
                        if (callerBuffer == null) throw WireReader.Malformed($"output {made} claims a caller buffer it was not given");
                        ulong copy = Math.Min(bytes, callerBytes);
                        if (copy > 0) Buffer.MemoryCopy(r.Data(at, copy), callerBuffer, callerBytes, copy);
                        t->Data = callerBuffer;
                        break;
                    case 2: // allocated by the plugin: lent in place
                        if (callerBuffer != null) throw WireReader.Malformed($"output {made} replaced the caller's buffer");
                        t->Data = r.Blob(bytes);
                        lease.Lend(t);
                        break;
                    default:
                        throw WireReader.Malformed($"output {made} has no known place");
                }
            }
            *numOutputs = (nuint)count;
            return SmiStatus.Success;
        }
        catch
        {
            for (int i = 0; i < made; i++)
                if (lease.Owns(&outputs[i])) { outputs[i].Release(&outputs[i]); outputs[i].Release = null; }
            throw;
        }
        finally { lease.Done(); }
    }

    public override void Close()
    {
        _supervisor.Stop();
        foreach (var m in _models.Values) m.Dispose();
        _models.Clear();
    }
}
