using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Plugins.OnnxRuntime;

/// <summary>
/// An ONNX Runtime session with the inputs and outputs it declares: one loaded model. ONNX files
/// declare every rank, so these specs always have <see cref="TensorSpec.Dims"/> (dynamic: -1).
/// </summary>
internal sealed unsafe class OnnxSession(InferenceSession session, string path, TensorSpec[] inputs, TensorSpec[] outputs) : IDisposable
{
    public InferenceSession Session { get; } = session;
    public string Path { get; } = path;
    public TensorSpec[] Inputs { get; } = inputs;
    public TensorSpec[] Outputs { get; } = outputs;
    public string[] OutputNames { get; } = outputs.Select(o => o.Name).ToArray();

    /// <summary>
    /// Whether requests can take the C API path (<see cref="OnnxRunner.RunNative"/>): every input and
    /// output is a fixed-size tensor. String tensors go through the managed API.
    /// </summary>
    public bool Native => Handle != 0 && _fixedSize;

    private readonly bool _fixedSize = inputs.Concat(outputs).All(s => s.Dtype != SmiDtype.Bytes);

    /// <summary>The OrtSession* (0 if this ONNX Runtime hides it: then the managed path serves) and the output names as a C array.</summary>
    public nint Handle { get; } = NativeHandle(session);

    public byte** OutputNamePointers { get; } = NamePointers(outputs);

    private static nint NativeHandle(InferenceSession session)
    {
        try { return OrtCApi.SessionHandle(session); }
        catch (MissingFieldException) { return 0; } // another ONNX Runtime build: the managed API still works
    }

    private static byte** NamePointers(TensorSpec[] specs)
    {
        var p = (byte**)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)Math.Max(1, specs.Length), (nuint)sizeof(byte*));
        for (int i = 0; i < specs.Length; i++) p[i] = specs[i].NativeName;
        return p;
    }

    public void Dispose()
    {
        Session.Dispose();
        System.Runtime.InteropServices.NativeMemory.Free(OutputNamePointers);
    }
}

/// <summary>A registered ONNX model: its configuration and, while loaded, its session.</summary>
internal sealed class OnnxModel
{
    public OnnxModel(SmiModelDescription description, OnnxConfig config)
    {
        Description = description;
        Config = config;
        Loaded = new LoadedModel<OnnxSession>(description.Name, s => s.Dispose());
    }

    public SmiModelDescription Description { get; }
    public string Name => Description.Name;

    /// <summary>Plugin options with the model's own config over them, and resource requests over both.</summary>
    public OnnxConfig Config { get; set; }

    public LoadedModel<OnnxSession> Loaded { get; }

    /// <summary>The path of the last successful load, for reloads and model info.</summary>
    public string? LoadedPath { get; private set; }

    /// <summary>Creates a session and swaps it in; requests keep the old one until then.</summary>
    public void Load(string? path)
    {
        path = LoadedModel<OnnxSession>.ModelFile(path, Description);
        InferenceSession session;
        bool shared = !Config.OwnThreadPools && OnnxThreadPools.Shared;
        try
        {
            using var options = Config.CreateSessionOptions(Name);
            session = new InferenceSession(path, options);
        }
        catch (OnnxRuntimeException e)
        {
            // ONNX Runtime's environment is one per process: if another library made it first,
            // without global pools, sessions on the shared pools cannot be made. Once that is
            // seen (a session of our own pools loads where a shared one did not), the shared
            // pools are given up for good.
            if (!shared || OnnxThreadPools.TryOwnPoolsInstead(Config, Name, path) is not { } own)
                throw new SmiException(SmiStatus.InvalidParam, $"ONNX Runtime cannot load {path}: {e.Message.Trim()}");
            session = own;
        }
        try
        {
            var inputs = session.InputNames.Select(n => Spec(n, session.InputMetadata[n])).ToArray();
            var outputs = session.OutputNames.Select(n => Spec(n, session.OutputMetadata[n])).ToArray();
            Loaded.Replace(new OnnxSession(session, path, inputs, outputs));
            LoadedPath = path;
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>Reloads the session with the current <see cref="Config"/> if it is loaded.</summary>
    public void Reload()
    {
        if (LoadedPath is { } path && Loaded.IsLoaded) Load(path);
    }

    public string InfoJson()
    {
        if (!Loaded.IsLoaded) return InfoJson(null);
        using var lease = Loaded.Acquire();
        return InfoJson(lease.Value);
    }

    private string InfoJson(OnnxSession? session)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            w.WriteString("name", Name);
            w.WriteString("framework", "onnx");
            w.WriteString("path", session?.Path ?? Description.Path);
            w.WriteBoolean("loaded", session is not null);
            w.WriteString("device", Config.Device);
            bool shared = !Config.OwnThreadPools && OnnxThreadPools.Shared;
            w.WriteString("thread_pool", shared ? "shared" : "own");
            w.WriteNumber("intra_op_threads", shared ? OnnxThreadPools.IntraOpThreads : Config.IntraOpThreads);
            TensorSpecJson.Write(w, "inputs", session?.Inputs ?? []);
            TensorSpecJson.Write(w, "outputs", session?.Outputs ?? []);
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    private TensorSpec Spec(string name, NodeMetadata m)
    {
        if (!m.IsTensor)
            throw new SmiException(SmiStatus.NotSupported, $"model '{Name}': {name} is a {m.OnnxValueType}, only tensors are supported");
        return new TensorSpec(name, OnnxTypes.ToSmi(m.ElementDataType), m.Dimensions.Select(d => (long)d).ToArray());
    }
}
