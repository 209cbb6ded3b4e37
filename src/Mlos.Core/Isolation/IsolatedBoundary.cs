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

    private readonly HostProcess _host;
    private readonly string _pluginId;
    private readonly ConcurrentDictionary<nint, RemoteModel> _models = new();
    private long _nextHandle;

    private IsolatedBoundary(HostProcess host, string pluginId, uint smiVersion, SmiCapabilities capabilities, PluginEntries entries, string nativeId, string path)
    {
        _host = host;
        _pluginId = pluginId;
        SmiVersion = smiVersion;
        Capabilities = capabilities;
        Entries = entries;
        NativeId = nativeId;
        Path = path;
    }

    public override uint SmiVersion { get; }
    public override string NativeId { get; }
    public override SmiCapabilities Capabilities { get; }
    public override PluginEntries Entries { get; }
    /// <summary>The plugin file as the host opened it (absolute).</summary>
    public string Path { get; }
    public override int? HostPid => _host.Pid;
    public override bool IsAlive => _host.IsAlive;
    public override string? Exit => _host.IsAlive ? null : _host.Describe(_pluginId, "").TrimEnd();

    /// <summary>
    /// Starts a host for <paramref name="path"/> and opens the plugin there with the core's loader
    /// and checks; throws what the loader threw (not found, not an SMI plugin, wrong major…).
    /// <paramref name="pluginId"/> null: the plugin's own id, as in process.
    /// </summary>
    public static IsolatedBoundary Start(NativePath? path, string? pluginId, IsolationOptions options)
    {
        if (path is null || path.Text.Trim().Length == 0)
            throw new MlosException(SmiStatus.InvalidParam, "plugin path must not be empty");
        var (host, frame) = HostProcess.Start(HostExecutable.Find(), path.Absolute(), pluginId ?? "", options.SharedMemoryBytes);
        try
        {
            var ready = host.ReadyMessage(frame);
            var message = ready.String();
            if (frame.Flags.HasFlag(WireFlags.HostFailure))
                throw new MlosException(PluginAnswers.Known((SmiStatus)frame.Status), message ?? "the plugin host could not open the plugin");
            uint version = ready.U32();
            var capabilities = (SmiCapabilities)ready.U64();
            var entries = (PluginEntries)ready.U32();
            var nativeId = ready.String() ?? "";
            var opened = ready.String() ?? path.Text;
            return new IsolatedBoundary(host, pluginId ?? nativeId, version, capabilities, entries, nativeId, opened);
        }
        catch
        {
            host.Dispose();
            throw;
        }
    }

    // ---- one call: a channel, a request, the answer ----

    private WireChannel Begin()
    {
        if (!_host.IsAlive) throw new MlosException(SmiStatus.Busy, $"plugin '{_pluginId}' is not running: {_host.Describe(_pluginId, "").TrimEnd()}");
        return _host.Rent();
    }

    /// <summary>
    /// Sends the request written at the start of the region and waits for the answer. The channel
    /// stays the caller's on return; on a throw it has been given back (or closed, when the host
    /// did not answer). The plugin's message, if any, becomes this thread's last error.
    /// </summary>
    private WireReader Exchange(WireChannel lane, WireOp op, uint length, string during, out SmiStatus status)
    {
        if (!lane.Send(op, 0, length) || !lane.Receive(out var frame) || frame.Op != op)
        {
            _host.Discard(lane);
            throw _host.Gone(_pluginId, during);
        }
        try
        {
            var r = lane.Reader(frame);
            var message = r.String();
            if (frame.Flags.HasFlag(WireFlags.HostFailure))
                throw new MlosException(PluginAnswers.Known((SmiStatus)frame.Status), message ?? $"the plugin host failed {during}");
            t_lastError = message;
            status = (SmiStatus)frame.Status;
            return r;
        }
        catch
        {
            _host.Return(lane);
            throw;
        }
    }

    /// <summary>An entry with a status only: the request written by <paramref name="write"/>, nothing read back but the status.</summary>
    private SmiStatus Simple(WireOp op, string during, WriteRequest write, ReadAnswer? read = null)
    {
        var lane = Begin();
        var w = new WireWriter(lane.Region, 0);
        try { write(ref w); }
        catch
        {
            _host.Return(lane);
            throw;
        }
        var r = Exchange(lane, op, w.Length, during, out var status);
        try
        {
            if (status == SmiStatus.Success) read?.Invoke(ref r);
            return status;
        }
        finally { _host.Return(lane); }
    }

    private delegate void WriteRequest(ref WireWriter w);
    private delegate void ReadAnswer(ref WireReader r);

    private RemoteModel Model(nint handle) =>
        _models.TryGetValue(handle, out var m) ? m : throw new MlosException(SmiStatus.InvalidParam, $"plugin '{_pluginId}' has no model with handle {handle}");

    private static string During(RemoteModel m, string entry) => $"during {entry} of model '{m.Name}'";

    // ---- the entries ----

    public override (string? Name, string? Version, string? Frameworks) Describe()
    {
        (string?, string?, string?) answer = default;
        Simple(WireOp.Describe, "while describing itself", static (ref WireWriter w) => { }, (ref WireReader r) => answer = (r.String(), r.String(), r.String()));
        return answer;
    }

    public override string? LastError() => t_lastError;

    public override SmiStatus Initialize(byte* config) =>
        Simple(WireOp.Initialize, "during initialize", (ref WireWriter w) => w.Text(config));

    public override SmiStatus Cleanup() => Release(() => Simple(WireOp.Cleanup, "during cleanup", static (ref WireWriter w) => { }));

    /// <summary>
    /// An entry that gives something back (cleanup, unregister, unload, deallocate): a host that is
    /// gone has given everything back already, so it succeeds, and the core can let go cleanly.
    /// </summary>
    private SmiStatus Release(Func<SmiStatus> call)
    {
        if (!_host.IsAlive) return SmiStatus.Success;
        try { return call(); }
        catch (MlosException) when (!_host.IsAlive) { return SmiStatus.Success; }
    }

    public override SmiStatus RegisterModel(SmiModelMetadata* metadata, nint* handle)
    {
        var m = *metadata;
        ulong hostHandle = 0;
        string name = Mlos.Smi.Sdk.Utf8.Read(m.Name) ?? "";
        var status = Simple(WireOp.Register, $"during register_model of model '{name}'", (ref WireWriter w) =>
        {
            w.Text(m.Name);
            w.Text(m.Framework);
            w.Text(m.Version);
            w.Text(m.Path);
            w.Text(m.Config);
        }, (ref WireReader r) => hostHandle = r.U64());
        if (status != SmiStatus.Success) return status;
        nint ours = (nint)Interlocked.Increment(ref _nextHandle);
        _models[ours] = new RemoteModel(hostHandle, name);
        *handle = ours;
        return status;
    }

    public override SmiStatus UnregisterModel(nint handle)
    {
        var model = Model(handle);
        var status = Release(() => Simple(WireOp.Unregister, During(model, "unregister_model"), (ref WireWriter w) => w.U64(model.HostHandle)));
        if (status == SmiStatus.Success && _models.TryRemove(handle, out var gone)) gone.Dispose();
        return status;
    }

    public override SmiStatus LoadModel(nint handle, byte* path)
    {
        var model = Model(handle);
        return Simple(WireOp.Load, During(model, "load_model"), (ref WireWriter w) => { w.U64(model.HostHandle); w.Text(path); });
    }

    public override SmiStatus UnloadModel(nint handle)
    {
        var model = Model(handle);
        return Release(() => Simple(WireOp.Unload, During(model, "unload_model"), (ref WireWriter w) => w.U64(model.HostHandle)));
    }

    public override SmiStatus AllocateResources(nint handle, SmiResourceReq* requirements, nuint count)
    {
        var model = Model(handle);
        if (count > (nuint)PluginAnswers.MaxTensors)
            throw new MlosException(SmiStatus.InvalidParam, $"at most {PluginAnswers.MaxTensors} resource requirements are taken");
        return Simple(WireOp.Allocate, During(model, "allocate_resources"), (ref WireWriter w) =>
        {
            w.U64(model.HostHandle);
            w.U32((uint)count);
            for (nuint i = 0; i < count; i++)
            {
                w.U32((uint)requirements[i].Type);
                w.I32(requirements[i].DeviceId);
                w.U64(requirements[i].Amount);
            }
        });
    }

    public override SmiStatus DeallocateResources(nint handle)
    {
        var model = Model(handle);
        return Release(() => Simple(WireOp.Deallocate, During(model, "deallocate_resources"), (ref WireWriter w) => w.U64(model.HostHandle)));
    }

    public override SmiStatus GetModelInfo(nint handle, byte* json, nuint* size)
    {
        var model = Model(handle);
        ulong capacity = *size;
        var lane = Begin();
        var w = new WireWriter(lane.Region, 0);
        w.U64(model.HostHandle);
        w.U64(capacity);
        var r = Exchange(lane, WireOp.ModelInfo, w.Length, During(model, "get_model_info"), out var status);
        try
        {
            ulong n = r.U64(), at = r.U64();
            if (status == SmiStatus.Success && n <= capacity && n > 0)
                Buffer.MemoryCopy(r.Data(at, n), json, capacity, n);
            *size = (nuint)n;
            return status;
        }
        finally { _host.Return(lane); }
    }

    public override SmiStatus GetModelIo(nint handle, SmiTensorSpec* inputs, nuint* numInputs, SmiTensorSpec* outputs, nuint* numOutputs)
    {
        var model = Model(handle);
        ulong capIn = *numInputs, capOut = *numOutputs;
        var lane = Begin();
        var w = new WireWriter(lane.Region, 0);
        w.U64(model.HostHandle);
        w.U64(capIn);
        w.U64(capOut);
        var r = Exchange(lane, WireOp.ModelIo, w.Length, During(model, "get_model_io"), out var status);
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
        finally { _host.Return(lane); }
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
        var lane = Begin();
        WireReader r;
        SmiStatus status;
        bool sent = false;
        try
        {
            var w = new WireWriter(lane.Region, 0);
            w.U64(model.HostHandle);
            w.U64(capacity);
            w.U64(inputSize);
            ulong blob = w.Blob(inputSize);
            if (inputSize > 0) Buffer.MemoryCopy(input, w.At(blob), inputSize, inputSize);
            sent = true;
            r = Exchange(lane, WireOp.Inference, w.Length, $"while running model '{model.Name}'", out status);
        }
        catch when (!sent)
        {
            _host.Return(lane); // the request never went: the channel is as it was
            throw;
        }
        try
        {
            ulong n = r.U64(), at = r.U64();
            if (status == SmiStatus.Success && n <= capacity && n > 0)
                Buffer.MemoryCopy(r.Data(at, n), output, capacity, n);
            *outputSize = (nuint)n;
            return status;
        }
        finally { _host.Return(lane); }
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
        var lane = Begin();
        WireReader r;
        SmiStatus status;
        bool sent = false;
        try
        {
            var w = new WireWriter(lane.Region, 0);
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
            r = Exchange(lane, WireOp.Infer, w.Length, $"while running model '{model.Name}'", out status);
        }
        catch when (!sent)
        {
            _host.Return(lane); // the request never went: the channel is as it was
            throw;
        }
        return status == SmiStatus.Success
            ? ReadOutputs(ref r, lane, model, outputs, numOutputs, capacity)
            : ReadFailure(ref r, lane, outputs, numOutputs, capacity, status);
    }

    private SmiStatus ReadFailure(ref WireReader r, WireChannel lane, SmiTensor* outputs, nuint* numOutputs, uint capacity, SmiStatus status)
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
        finally { _host.Return(lane); }
    }

    /// <summary>
    /// The outputs of a successful call: a caller's buffer gets its output copied in; an output the
    /// plugin allocated stays in the region, lent until released (<see cref="OutputLease"/>).
    /// A count past the capacity is passed on unread, for <see cref="Plugin"/> to call a breach.
    /// </summary>
    private SmiStatus ReadOutputs(ref WireReader r, WireChannel lane, RemoteModel model, SmiTensor* outputs, nuint* numOutputs, uint capacity)
    {
        var lease = new OutputLease(_host, lane);
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
                if (outputs[i].Release != null) { outputs[i].Release(&outputs[i]); outputs[i].Release = null; }
            throw;
        }
        finally { lease.Done(); }
    }

    public override void Close()
    {
        _host.Stop();
        foreach (var m in _models.Values) m.Dispose();
        _models.Clear();
    }
}
