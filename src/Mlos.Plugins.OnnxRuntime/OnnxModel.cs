using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Plugins.OnnxRuntime;

/// <summary>One model input or output as the ONNX file declares it; dynamic dimensions are -1.</summary>
internal sealed unsafe class IoSpec(string name, SmiDtype dtype, long[] dims)
{
    public string Name { get; } = name;
    public byte* NativeName { get; } = Utf8.Intern(name);
    public SmiDtype Dtype { get; } = dtype;
    public long[] Dims { get; } = dims;

    public SmiTensorSpec ToSmi()
    {
        var spec = new SmiTensorSpec { Name = NativeName, Dtype = Dtype, NDim = (uint)Math.Min(Dims.Length, SmiVersion.MaxDims) };
        Dims.AsSpan(0, (int)spec.NDim).CopyTo(spec.Shape);
        return spec;
    }
}

/// <summary>
/// A registered ONNX model: its configuration and, while loaded, its session. Requests hold the
/// read side of <see cref="_gate"/> for the whole run, and unload takes the write side, so a
/// session is never disposed under a running request, whatever host calls the plugin.
/// </summary>
internal sealed class OnnxModel(SmiModelDescription description, OnnxConfig config)
{
    private readonly ReaderWriterLockSlim _gate = new(LockRecursionPolicy.NoRecursion);
    private InferenceSession? _session;

    public SmiModelDescription Description { get; } = description;
    public string Name => Description.Name;

    /// <summary>Plugin options with the model's own config over them, and resource requests over both.</summary>
    public OnnxConfig Config { get; set; } = config;

    public string? LoadedPath { get; private set; }
    public IoSpec[] Inputs { get; private set; } = [];
    public IoSpec[] Outputs { get; private set; } = [];
    public string[] OutputNames { get; private set; } = [];
    public bool IsLoaded => Volatile.Read(ref _session) is not null;

    public void Load(string? path)
    {
        path ??= Description.Path;
        if (string.IsNullOrEmpty(path))
            throw new SmiException(SmiStatus.InvalidParam, $"model '{Name}' has no path: give one at registration or to load_model");
        if (!File.Exists(path))
            throw new SmiException(SmiStatus.NotFound, $"model file not found: {path}");
        _gate.EnterWriteLock();
        try
        {
            DisposeSession();
            using var options = Config.CreateSessionOptions(Name);
            InferenceSession session;
            try { session = new InferenceSession(path, options); }
            catch (OnnxRuntimeException e)
            {
                throw new SmiException(SmiStatus.InvalidParam, $"ONNX Runtime cannot load {path}: {e.Message.Trim()}");
            }
            Inputs = session.InputNames.Select(n => Spec(n, session.InputMetadata[n])).ToArray();
            Outputs = session.OutputNames.Select(n => Spec(n, session.OutputMetadata[n])).ToArray();
            OutputNames = session.OutputNames.ToArray();
            LoadedPath = path;
            Volatile.Write(ref _session, session);
        }
        finally { _gate.ExitWriteLock(); }
    }

    public void Unload()
    {
        _gate.EnterWriteLock();
        try { DisposeSession(); }
        finally { _gate.ExitWriteLock(); }
    }

    /// <summary>Reloads the session with the current <see cref="Config"/> if it is loaded.</summary>
    public void Reload()
    {
        if (LoadedPath is { } path && IsLoaded) Load(path);
    }

    /// <summary>The session for one request; dispose the lease when the request is done.</summary>
    public Lease Acquire()
    {
        _gate.EnterReadLock();
        var session = _session;
        if (session is null)
        {
            _gate.ExitReadLock();
            throw new SmiException(SmiStatus.InvalidState, $"model '{Name}' is not loaded");
        }
        return new Lease(this, session);
    }

    public readonly struct Lease(OnnxModel model, InferenceSession session) : IDisposable
    {
        public InferenceSession Session => session;
        public void Dispose() => model._gate.ExitReadLock();
    }

    public string InfoJson()
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            w.WriteString("name", Name);
            w.WriteString("framework", "onnx");
            w.WriteString("path", LoadedPath ?? Description.Path);
            w.WriteBoolean("loaded", IsLoaded);
            w.WriteString("device", Config.Device);
            w.WriteNumber("intra_op_threads", Config.IntraOpThreads);
            WriteSpecs(w, "inputs", Inputs);
            WriteSpecs(w, "outputs", Outputs);
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void WriteSpecs(Utf8JsonWriter w, string name, IoSpec[] specs)
    {
        w.WriteStartArray(name);
        foreach (var s in specs)
        {
            w.WriteStartObject();
            w.WriteString("name", s.Name);
            w.WriteString("datatype", SmiDtypes.Name(s.Dtype));
            w.WriteStartArray("shape");
            foreach (var d in s.Dims) w.WriteNumberValue(d);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private IoSpec Spec(string name, NodeMetadata m)
    {
        if (!m.IsTensor)
            throw new SmiException(SmiStatus.NotSupported, $"model '{Name}': {name} is a {m.OnnxValueType}, only tensors are supported");
        return new IoSpec(name, OnnxTypes.ToSmi(m.ElementDataType), m.Dimensions.Select(d => (long)d).ToArray());
    }

    private void DisposeSession()
    {
        var old = Interlocked.Exchange(ref _session, null);
        old?.Dispose();
    }
}
