using System.Text;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;
using static Mlos.Plugins.Python.CPython;

namespace Mlos.Plugins.Python;

/// <summary>
/// The embedded interpreter: started on the first initialize, with the GIL released at once so
/// that any host thread can take it (<see cref="Gil"/>). A host that already runs CPython (a
/// Python process loading the bridge) keeps its interpreter: the bridge only borrows it.
/// </summary>
internal static unsafe class PythonRuntime
{
    private static bool s_ownsInterpreter;
    private static nint s_mainThreadState;
    private static int s_mainThreadId;

    /// <summary>The bridge module's functions (mlos_python_bridge.py), held for the interpreter's life.</summary>
    public static nint LoadClass, CallStatus, InferenceResult, PluginString, ModelInfo, Infer, ModelIo;

    public static bool Running => LoadClass != 0;

    /// <summary>Loads libpython, starts the interpreter if nobody has, and runs the bridge module.</summary>
    public static void Start(PythonConfig config)
    {
        if (Running) return;
        CPython.Load(config.Libraries);
        if (Py_IsInitialized() == 0)
        {
            // 0: no signal handlers; the host owns SIGINT and friends.
            Py_InitializeEx(0);
            s_ownsInterpreter = true;
            s_mainThreadId = Environment.CurrentManagedThreadId;
            try { RunBridgeModule(); }
            finally { s_mainThreadState = PyEval_SaveThread(); }
        }
        else
        {
            using var gil = new Gil();
            RunBridgeModule();
        }
    }

    /// <summary>
    /// Drops the bridge's references. With <paramref name="finalize"/>, an interpreter the bridge
    /// started is finalized too (atexit handlers and finalizers run). Off by default: CPython
    /// extension modules such as numpy cannot be imported again into a re-initialized interpreter
    /// (numpy 1.24 fails with "SystemError: bad argument to internal function"), so a host that
    /// initializes the plugin again in the same process needs the interpreter kept.
    /// </summary>
    public static void Stop(bool finalize)
    {
        if (!Running) return;
        bool onMainThread = s_ownsInterpreter && Environment.CurrentManagedThreadId == s_mainThreadId && s_mainThreadState != 0;
        int gil = 0;
        if (onMainThread && finalize) PyEval_RestoreThread(s_mainThreadState);
        else gil = PyGILState_Ensure();
        ReleaseFunctions();
        if (finalize && s_ownsInterpreter)
        {
            int rc = Py_FinalizeEx();
            s_ownsInterpreter = false;
            s_mainThreadState = 0;
            if (rc != 0) throw new SmiException(SmiStatus.Runtime, "Py_FinalizeEx failed: flushing buffered output raised");
            return;
        }
        PyGILState_Release(gil);
    }

    private static void ReleaseFunctions()
    {
        Swap(ref PythonError.Describe); Swap(ref LoadClass); Swap(ref CallStatus); Swap(ref InferenceResult); Swap(ref PluginString);
        Swap(ref ModelInfo); Swap(ref Infer); Swap(ref ModelIo);

        static void Swap(ref nint f)
        {
            Py.Release(f);
            f = 0;
        }
    }

    private static void RunBridgeModule()
    {
        string source;
        using (var stream = typeof(PythonRuntime).Assembly.GetManifestResourceStream("mlos_python_bridge.py")
            ?? throw new SmiException(SmiStatus.Runtime, "the Python bridge module is missing from the plugin"))
        using (var reader = new StreamReader(stream, Encoding.UTF8))
            source = reader.ReadToEnd();
        byte* code = Utf8.Allocate(source);
        nint compiled, module;
        try { compiled = Py.Check(Py_CompileString(code, Utf8.Intern("mlos_python_bridge.py"), Py_file_input)); }
        finally { System.Runtime.InteropServices.NativeMemory.Free(code); }
        try { module = Py.Check(PyImport_ExecCodeModule(Utf8.Intern("mlos_python_bridge"), compiled)); }
        finally { Py.Release(compiled); }
        try
        {
            PythonError.Describe = Function(module, "describe");
            LoadClass = Function(module, "load_class");
            CallStatus = Function(module, "call_status");
            InferenceResult = Function(module, "inference_result");
            PluginString = Function(module, "plugin_string");
            ModelInfo = Function(module, "model_info");
            Infer = Function(module, "infer");
            ModelIo = Function(module, "model_io");
        }
        finally { Py.Release(module); }
    }

    private static nint Function(nint module, string name) =>
        Py.Check(PyObject_GetAttrString(module, Utf8.Intern(name)));
}
