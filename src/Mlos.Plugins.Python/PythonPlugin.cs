using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;
using static Mlos.Plugins.Python.CPython;

namespace Mlos.Plugins.Python;

/// <summary>Per-model state: the integer handle Python sees (kept as a Python int) and the registration.</summary>
public sealed class PythonModel(long id, nint handleObject, SmiModelDescription description)
{
    public long Id { get; } = id;
    /// <summary>The handle as a Python int, made once so that inference allocates no handle object.</summary>
    internal nint HandleObject = handleObject;
    public SmiModelDescription Description { get; } = description;
    public volatile bool Loaded;
    internal SmiModelIo? Io;
}

/// <summary>
/// The Python bridge: serves a Python class that follows the guide's <c>MyPythonPlugin</c>
/// protocol. Each SMI entry takes the GIL, calls the method and maps the answer: an int status
/// to the same SMI status, a Python exception to SMI_ERROR_RUNTIME with its text as the last
/// error (the plugin stays usable), a wrong type to SMI_ERROR_RUNTIME naming what was expected.
/// Thread-safe for the host: every call holds the GIL, so Python sees one call at a time between
/// its own switch points, as in any threaded Python server.
/// </summary>
public sealed unsafe class PythonPlugin : ISmiPlugin<PythonModel>
{
    private readonly Lock _lifecycle = new();
    private PythonConfig? _config;
    private nint _instance;
    private nint _inferenceName;
    private long _nextHandle;
    private string _name = "MLOS Python Bridge", _version = "1.0.0", _frameworks = "python";

    public string PluginId => "python-bridge";
    public string Name => _name;
    public string Version => _version;
    public string SupportedFrameworks => _frameworks;
    public SmiCapabilities Capabilities => SmiCapabilities.ThreadSafe;

    public void Initialize(string? config)
    {
        lock (_lifecycle)
        {
            if (_instance != 0)
                throw new SmiException(SmiStatus.InvalidState, $"the Python bridge already serves {_config!.Module}.{_config.Class}; call cleanup first");
            var cfg = PythonConfig.Parse(config);
            PythonRuntime.Start(cfg);
            using var gil = new Gil();
            nint instance = LoadInstance(cfg);
            try
            {
                string what = $"{cfg.Module}.{cfg.Class}";
                _name = PluginString(instance, "get_plugin_name", what);
                _version = PluginString(instance, "get_plugin_version", "0.0.0");
                _frameworks = PluginString(instance, "get_supported_frameworks", "python");
                _inferenceName = Py.Check(PyUnicode_InternFromString(Utf8.Intern("inference")));
                nint configObject = Py.Str(config);
                try { RequireSuccess(CallStatus(instance, "initialize", [configObject]), cfg, "initialize"); }
                finally { Py.Release(configObject); }
            }
            catch
            {
                Py.Release(instance);
                throw;
            }
            _config = cfg;
            _instance = instance;
        }
    }

    public void Cleanup()
    {
        lock (_lifecycle)
        {
            if (_instance == 0) return;
            SmiException? failure = null;
            using (new Gil())
            {
                try { RequireSuccess(CallStatus(_instance, "cleanup", []), _config!, "cleanup"); }
                catch (SmiException e) { failure = e; }
                Py.Release(_instance);
                Py.Release(_inferenceName);
                _instance = _inferenceName = 0;
            }
            PythonRuntime.Stop(_config!.FinalizeOnCleanup);
            if (failure is not null) throw failure;
        }
    }

    public PythonModel RegisterModel(SmiModelDescription model)
    {
        nint instance = Instance();
        using var gil = new Gil();
        long id = Interlocked.Increment(ref _nextHandle);
        nint handle = Py.Long(id);
        nint metadata = Metadata(model);
        try { RequireSuccess(CallStatus(instance, "register_model", [handle, metadata]), _config!, "register_model"); }
        catch
        {
            Py.Release(handle);
            throw;
        }
        finally { Py.Release(metadata); }
        return new PythonModel(id, handle, model);
    }

    public void UnregisterModel(PythonModel model)
    {
        nint instance = Instance();
        using var gil = new Gil();
        RequireSuccess(CallStatus(instance, "unregister_model", [model.HandleObject]), _config!, "unregister_model");
        Py.Release(model.HandleObject);
        model.HandleObject = 0;
    }

    public void LoadModel(PythonModel model, string? path)
    {
        nint instance = Instance();
        using var gil = new Gil();
        nint pathObject = Py.Str(path ?? model.Description.Path);
        try { RequireSuccess(CallStatus(instance, "load_model", [model.HandleObject, pathObject]), _config!, "load_model"); }
        finally { Py.Release(pathObject); }
        model.Io = null;
        model.Loaded = true;
    }

    public void UnloadModel(PythonModel model)
    {
        nint instance = Instance();
        using var gil = new Gil();
        RequireSuccess(CallStatus(instance, "unload_model", [model.HandleObject]), _config!, "unload_model");
        model.Loaded = false;
    }

    /// <summary>
    /// The hot path, in the C API: one bytes object in, one method call, and the two common
    /// answers, <c>bytes</c> and <c>(bytes, 0)</c>, read without calling back into Python.
    /// </summary>
    public int Inference(PythonModel model, ReadOnlySpan<byte> input, Span<byte> output)
    {
        nint instance = Instance();
        using var gil = new Gil();
        nint bytes;
        fixed (byte* p = input) bytes = Py.Check(PyBytes_FromStringAndSize(p, input.Length));
        nint result;
        nint* args = stackalloc nint[4];
        args[1] = instance;
        args[2] = model.HandleObject;
        args[3] = bytes;
        try { result = PyObject_VectorcallMethod(_inferenceName, args + 1, Nargs(3), 0); }
        finally { Py.Release(bytes); }
        if (result == 0) throw PythonError.Take();
        try
        {
            nint payload = FastPayload(result);
            if (payload == 0)
            {
                nint slow = Py.Call(PythonRuntime.InferenceResult, [result]);
                Py.Release(result);
                result = slow;
                int status = (int)Py.ToLong(PyTuple_GetItem(result, 1));
                RequireSuccess(status, _config!, "inference");
                payload = PyTuple_GetItem(result, 0);
            }
            byte* data;
            nint size;
            Py.Check(PyBytes_AsStringAndSize(payload, &data, &size));
            if (size > output.Length)
                throw SmiException.BufferTooSmall((ulong)size, (ulong)output.Length, $"output buffer for {_config!.Class}.inference()");
            new ReadOnlySpan<byte>(data, (int)size).CopyTo(output);
            return (int)size;
        }
        finally { Py.Release(result); }
    }

    /// <summary>The bytes of a <c>bytes</c> or <c>(bytes, 0)</c> answer (borrowed), else 0.</summary>
    private static nint FastPayload(nint result)
    {
        if (IsBytes(result)) return result;
        if (!IsTuple(result) || PyTuple_Size(result) != 2) return 0;
        nint first = PyTuple_GetItem(result, 0), second = PyTuple_GetItem(result, 1);
        if (!IsBytes(first) || !IsLong(second)) return 0;
        long status = PyLong_AsLongLong(second);
        if (status == -1 && PyErr_Occurred() != 0) { PyErr_Clear(); return 0; }
        return status == 0 ? first : 0;
    }

    public string GetModelInfo(PythonModel model)
    {
        nint instance = Instance();
        using var gil = new Gil();
        nint info = Py.Call(PythonRuntime.ModelInfo, [instance, model.HandleObject]);
        try
        {
            return Py.ToText(info) ?? System.Text.Json.JsonSerializer.Serialize(new DefaultInfo(
                model.Description.Name, model.Description.Framework ?? "", model.Loaded, PluginId, $"{_config!.Module}.{_config.Class}"),
                PythonJson.Default.DefaultInfo);
        }
        finally { Py.Release(info); }
    }

    public SmiModelIo GetModelIo(PythonModel model)
    {
        if (model.Io is { } io) return io;
        nint instance = Instance();
        using var gil = new Gil();
        return model.Io = PythonTensors.ModelIo(instance, model, _config!);
    }

    public void Infer(PythonModel model, ReadOnlySpan<SmiTensor> inputs, ref SmiOutputs outputs)
    {
        nint instance = Instance();
        using var gil = new Gil();
        var io = model.Io ?? TryModelIo(instance, model);
        PythonTensors.Infer(instance, model, io, inputs, ref outputs, _config!);
    }

    /// <summary>
    /// With a deadline, Python code still running when it passes gets a TimeoutError raised in
    /// its thread (<see cref="PythonDeadline"/>), at its next bytecode; a long call into C code
    /// (a numpy kernel, a sleep) ends first.
    /// </summary>
    public void Infer(PythonModel model, ReadOnlySpan<SmiTensor> inputs, ref SmiOutputs outputs, SmiDeadline deadline)
    {
        deadline.ThrowIfPassed($"model '{model.Description.Name}'");
        nint instance = Instance();
        using var gil = new Gil();
        var io = model.Io ?? TryModelIo(instance, model);
        using var stop = new PythonDeadline(deadline);
        try { PythonTensors.Infer(instance, model, io, inputs, ref outputs, _config!); }
        catch (SmiException) when (stop.Fired) { throw SmiDeadline.Exceeded($"model '{model.Description.Name}'"); }
    }

    private SmiModelIo? TryModelIo(nint instance, PythonModel model)
    {
        try { return model.Io = PythonTensors.ModelIo(instance, model, _config!); }
        catch (SmiException e) when (e.Status == SmiStatus.NotSupported) { return null; }
    }

    private nint Instance()
    {
        nint instance = _instance;
        return instance != 0 ? instance
            : throw new SmiException(SmiStatus.InvalidState, "the Python bridge is not initialized");
    }

    private static nint LoadInstance(PythonConfig cfg)
    {
        nint module = Py.Str(cfg.Module), cls = Py.Str(cfg.Class), path = Py.Str(cfg.Path);
        nint result;
        try { result = Py.Call(PythonRuntime.LoadClass, [module, cls, path]); }
        finally
        {
            Py.Release(module);
            Py.Release(cls);
            Py.Release(path);
        }
        if (!IsTuple(result)) return result;
        try
        {
            var status = (SmiStatus)Py.ToLong(PyTuple_GetItem(result, 0));
            throw new SmiException(status, Py.ToText(PyTuple_GetItem(result, 1)) ?? "");
        }
        finally { Py.Release(result); }
    }

    private static string PluginString(nint instance, string method, string fallback)
    {
        nint m = Py.Str(method), f = Py.Str(fallback);
        try
        {
            nint value = Py.Call(PythonRuntime.PluginString, [instance, m, f]);
            try { return Py.ToText(value) ?? fallback; }
            finally { Py.Release(value); }
        }
        finally
        {
            Py.Release(m);
            Py.Release(f);
        }
    }

    private static int CallStatus(nint instance, string method, ReadOnlySpan<nint> args)
    {
        Span<nint> all = stackalloc nint[args.Length + 2];
        all[0] = instance;
        all[1] = Py.Str(method);
        args.CopyTo(all[2..]);
        try
        {
            nint status = Py.Call(PythonRuntime.CallStatus, all);
            try { return (int)Py.ToLong(status); }
            finally { Py.Release(status); }
        }
        finally { Py.Release(all[1]); }
    }

    /// <summary>A status the Python method returned, as the caller's SMI status with a message.</summary>
    internal static void RequireSuccess(int status, PythonConfig cfg, string method)
    {
        if (status == 0) return;
        var s = (SmiStatus)status;
        throw new SmiException(s, $"{cfg.Module}.{cfg.Class}.{method}() returned status {SmiStatusNames.Of(s)}");
    }

    private static nint Metadata(SmiModelDescription model)
    {
        nint dict = Py.Check(PyDict_New());
        try
        {
            Set(dict, "name", model.Name);
            Set(dict, "framework", model.Framework);
            Set(dict, "version", model.Version);
            Set(dict, "path", model.Path);
            Set(dict, "config", model.Config);
            return dict;
        }
        catch
        {
            Py.Release(dict);
            throw;
        }

        static void Set(nint dict, string key, string? value)
        {
            nint k = Py.Str(key), v = Py.Str(value);
            try { Py.Check(PyDict_SetItem(dict, k, v)); }
            finally
            {
                Py.Release(k);
                Py.Release(v);
            }
        }
    }
}

internal sealed record DefaultInfo(string name, string framework, bool loaded, string plugin, string python_class);

[System.Text.Json.Serialization.JsonSerializable(typeof(DefaultInfo))]
internal sealed partial class PythonJson : System.Text.Json.Serialization.JsonSerializerContext;
