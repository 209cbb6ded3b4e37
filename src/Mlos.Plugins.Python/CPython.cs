using System.Runtime.InteropServices;
using Mlos.Smi.Interop;
using Mlos.Smi.Sdk;

namespace Mlos.Plugins.Python;

/// <summary>
/// The one boundary file for the CPython C API. libpython is opened at run time with
/// RTLD_GLOBAL (extension modules such as numpy resolve CPython symbols globally) and every
/// function is bound with dlsym, so the plugin builds without Python headers and works with any
/// CPython 3.9+ (PyObject_VectorcallMethod). Only stable, exported functions are used; the one
/// struct read directly is PyObject's header (refcount, type), which is fixed in release builds.
/// </summary>
internal static unsafe class CPython
{
    public const int PyBUF_SIMPLE = 0;
    public const int Py_file_input = 257;
    private const ulong Py_TPFLAGS_LONG_SUBCLASS = 1UL << 24;
    private const ulong Py_TPFLAGS_TUPLE_SUBCLASS = 1UL << 26;
    private const ulong Py_TPFLAGS_BYTES_SUBCLASS = 1UL << 27;
    /// <summary>PY_VECTORCALL_ARGUMENTS_OFFSET: lets CPython use args[-1] as scratch, saving a copy.</summary>
    private const ulong VectorcallArgumentsOffset = 1UL << 63;

    /// <summary>nargsf for a vectorcall of <paramref name="count"/> arguments with one spare slot before them.</summary>
    public static nuint Nargs(int count) => unchecked((nuint)((uint)count | VectorcallArgumentsOffset));

    /// <summary>Py_buffer (Include/pybuffer.h), 80 bytes on 64-bit.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct PyBuffer
    {
        public void* Buf;
        public nint Obj;
        public nint Len;
        public nint ItemSize;
        public int ReadOnly;
        public int NDim;
        public byte* Format;
        public nint* Shape;
        public nint* Strides;
        public nint* SubOffsets;
        public void* Internal;
    }

    public static string? LibraryPath { get; private set; }
    public static bool Loaded => LibraryPath is not null;

    public static delegate* unmanaged<int> Py_IsInitialized;
    public static delegate* unmanaged<int, void> Py_InitializeEx;
    public static delegate* unmanaged<int> Py_FinalizeEx;
    public static delegate* unmanaged<nint> PyEval_SaveThread;
    public static delegate* unmanaged<nint, void> PyEval_RestoreThread;
    public static delegate* unmanaged<int> PyGILState_Ensure;
    public static delegate* unmanaged<int, void> PyGILState_Release;
    public static delegate* unmanaged<nint, void> Py_IncRef;
    public static delegate* unmanaged<nint, void> Py_DecRef;
    public static delegate* unmanaged<nint> PyErr_Occurred;
    public static delegate* unmanaged<nint*, nint*, nint*, void> PyErr_Fetch;
    public static delegate* unmanaged<nint*, nint*, nint*, void> PyErr_NormalizeException;
    public static delegate* unmanaged<void> PyErr_Clear;
    public static delegate* unmanaged<nuint> PyThread_get_thread_ident;
    public static delegate* unmanaged<nuint, nint, int> PyThreadState_SetAsyncExc;
    /// <summary>The TimeoutError type object (the value of CPython's PyExc_TimeoutError).</summary>
    public static nint PyExc_TimeoutError;
    public static delegate* unmanaged<nint, nint, void> PyException_SetTraceback;
    public static delegate* unmanaged<byte*, nint, nint> PyUnicode_FromStringAndSize;
    public static delegate* unmanaged<nint, nint*, byte*> PyUnicode_AsUTF8AndSize;
    public static delegate* unmanaged<byte*, nint> PyUnicode_InternFromString;
    public static delegate* unmanaged<byte*, nint, nint> PyBytes_FromStringAndSize;
    public static delegate* unmanaged<nint, byte**, nint*, int> PyBytes_AsStringAndSize;
    public static delegate* unmanaged<long, nint> PyLong_FromLongLong;
    public static delegate* unmanaged<nint, long> PyLong_AsLongLong;
    public static delegate* unmanaged<nint, byte*, nint> PyObject_GetAttrString;
    public static delegate* unmanaged<nint, nint*, nuint, nint, nint> PyObject_Vectorcall;
    public static delegate* unmanaged<nint, nint*, nuint, nint, nint> PyObject_VectorcallMethod;
    public static delegate* unmanaged<nint, nint> PyObject_Str;
    public static delegate* unmanaged<byte*, byte*, int, nint> Py_CompileString;
    public static delegate* unmanaged<byte*, nint, nint> PyImport_ExecCodeModule;
    public static delegate* unmanaged<nint> PyDict_New;
    public static delegate* unmanaged<nint, nint, nint, int> PyDict_SetItem;
    public static delegate* unmanaged<nint, nint> PyTuple_New;
    public static delegate* unmanaged<nint, nint, nint, int> PyTuple_SetItem;
    public static delegate* unmanaged<nint, nint> PyTuple_Size;
    public static delegate* unmanaged<nint, nint, nint> PyTuple_GetItem;
    public static delegate* unmanaged<nint, nint> PyList_Size;
    public static delegate* unmanaged<nint, nint, nint> PyList_GetItem;
    public static delegate* unmanaged<nint, PyBuffer*, int, int> PyObject_GetBuffer;
    public static delegate* unmanaged<PyBuffer*, void> PyBuffer_Release;
    public static delegate* unmanaged<nint, ulong> PyType_GetFlags;
    /// <summary>Address of _Py_NoneStruct: Python's None.</summary>
    public static nint None;

    /// <summary>
    /// Opens the first of <paramref name="candidates"/> that loads and binds every function.
    /// Throws NOT_FOUND naming each candidate and the loader's reason.
    /// </summary>
    public static void Load(IReadOnlyList<string> candidates)
    {
        if (Loaded) return;
        var reasons = new List<string>();
        foreach (var name in candidates)
        {
            byte* n = Utf8.Allocate(name);
            void* lib;
            try { lib = Libdl.Open(n, Libdl.RTLD_NOW | Libdl.RTLD_GLOBAL); }
            finally { NativeMemory.Free(n); }
            if (lib == null) { reasons.Add(Libdl.LastError()); continue; }
            Bind(lib);
            LibraryPath = name;
            return;
        }
        throw new SmiException(Mlos.Smi.Abi.SmiStatus.NotFound,
            $"cannot load CPython ({string.Join("; ", reasons)}); install libpython3 (Debian: libpython3.11) or name the library with \"libpython\" in the plugin config");
    }

    private static void Bind(void* lib)
    {
        Py_IsInitialized = (delegate* unmanaged<int>)Sym(lib, "Py_IsInitialized");
        Py_InitializeEx = (delegate* unmanaged<int, void>)Sym(lib, "Py_InitializeEx");
        Py_FinalizeEx = (delegate* unmanaged<int>)Sym(lib, "Py_FinalizeEx");
        PyEval_SaveThread = (delegate* unmanaged<nint>)Sym(lib, "PyEval_SaveThread");
        PyEval_RestoreThread = (delegate* unmanaged<nint, void>)Sym(lib, "PyEval_RestoreThread");
        PyGILState_Ensure = (delegate* unmanaged<int>)Sym(lib, "PyGILState_Ensure");
        PyGILState_Release = (delegate* unmanaged<int, void>)Sym(lib, "PyGILState_Release");
        Py_IncRef = (delegate* unmanaged<nint, void>)Sym(lib, "Py_IncRef");
        Py_DecRef = (delegate* unmanaged<nint, void>)Sym(lib, "Py_DecRef");
        PyErr_Occurred = (delegate* unmanaged<nint>)Sym(lib, "PyErr_Occurred");
        PyErr_Fetch = (delegate* unmanaged<nint*, nint*, nint*, void>)Sym(lib, "PyErr_Fetch");
        PyErr_NormalizeException = (delegate* unmanaged<nint*, nint*, nint*, void>)Sym(lib, "PyErr_NormalizeException");
        PyErr_Clear = (delegate* unmanaged<void>)Sym(lib, "PyErr_Clear");
        PyThread_get_thread_ident = (delegate* unmanaged<nuint>)Sym(lib, "PyThread_get_thread_ident");
        PyThreadState_SetAsyncExc = (delegate* unmanaged<nuint, nint, int>)Sym(lib, "PyThreadState_SetAsyncExc");
        PyExc_TimeoutError = *(nint*)Sym(lib, "PyExc_TimeoutError");
        PyException_SetTraceback = (delegate* unmanaged<nint, nint, void>)Sym(lib, "PyException_SetTraceback");
        PyUnicode_FromStringAndSize = (delegate* unmanaged<byte*, nint, nint>)Sym(lib, "PyUnicode_FromStringAndSize");
        PyUnicode_AsUTF8AndSize = (delegate* unmanaged<nint, nint*, byte*>)Sym(lib, "PyUnicode_AsUTF8AndSize");
        PyUnicode_InternFromString = (delegate* unmanaged<byte*, nint>)Sym(lib, "PyUnicode_InternFromString");
        PyBytes_FromStringAndSize = (delegate* unmanaged<byte*, nint, nint>)Sym(lib, "PyBytes_FromStringAndSize");
        PyBytes_AsStringAndSize = (delegate* unmanaged<nint, byte**, nint*, int>)Sym(lib, "PyBytes_AsStringAndSize");
        PyLong_FromLongLong = (delegate* unmanaged<long, nint>)Sym(lib, "PyLong_FromLongLong");
        PyLong_AsLongLong = (delegate* unmanaged<nint, long>)Sym(lib, "PyLong_AsLongLong");
        PyObject_GetAttrString = (delegate* unmanaged<nint, byte*, nint>)Sym(lib, "PyObject_GetAttrString");
        PyObject_Vectorcall = (delegate* unmanaged<nint, nint*, nuint, nint, nint>)Sym(lib, "PyObject_Vectorcall");
        PyObject_VectorcallMethod = (delegate* unmanaged<nint, nint*, nuint, nint, nint>)Sym(lib, "PyObject_VectorcallMethod");
        PyObject_Str = (delegate* unmanaged<nint, nint>)Sym(lib, "PyObject_Str");
        Py_CompileString = (delegate* unmanaged<byte*, byte*, int, nint>)Sym(lib, "Py_CompileString");
        PyImport_ExecCodeModule = (delegate* unmanaged<byte*, nint, nint>)Sym(lib, "PyImport_ExecCodeModule");
        PyDict_New = (delegate* unmanaged<nint>)Sym(lib, "PyDict_New");
        PyDict_SetItem = (delegate* unmanaged<nint, nint, nint, int>)Sym(lib, "PyDict_SetItem");
        PyTuple_New = (delegate* unmanaged<nint, nint>)Sym(lib, "PyTuple_New");
        PyTuple_SetItem = (delegate* unmanaged<nint, nint, nint, int>)Sym(lib, "PyTuple_SetItem");
        PyTuple_Size = (delegate* unmanaged<nint, nint>)Sym(lib, "PyTuple_Size");
        PyTuple_GetItem = (delegate* unmanaged<nint, nint, nint>)Sym(lib, "PyTuple_GetItem");
        PyList_Size = (delegate* unmanaged<nint, nint>)Sym(lib, "PyList_Size");
        PyList_GetItem = (delegate* unmanaged<nint, nint, nint>)Sym(lib, "PyList_GetItem");
        PyObject_GetBuffer = (delegate* unmanaged<nint, PyBuffer*, int, int>)Sym(lib, "PyObject_GetBuffer");
        PyBuffer_Release = (delegate* unmanaged<PyBuffer*, void>)Sym(lib, "PyBuffer_Release");
        PyType_GetFlags = (delegate* unmanaged<nint, ulong>)Sym(lib, "PyType_GetFlags");
        None = (nint)Sym(lib, "_Py_NoneStruct");
    }

    private static void* Sym(void* lib, string name)
    {
        byte* n = Utf8.Allocate(name);
        try
        {
            void* p = Libdl.Symbol(lib, n);
            return p != null ? p : throw new SmiException(Mlos.Smi.Abi.SmiStatus.NotSupported,
                $"the CPython library lacks {name}: the Python bridge needs CPython 3.9 or newer");
        }
        finally { NativeMemory.Free(n); }
    }

    // PyObject's header is { Py_ssize_t ob_refcnt; PyTypeObject* ob_type; } in release builds.
    private static ulong TypeFlags(nint o) => PyType_GetFlags(*(nint*)(o + sizeof(nint)));
    public static bool IsBytes(nint o) => (TypeFlags(o) & Py_TPFLAGS_BYTES_SUBCLASS) != 0;
    public static bool IsTuple(nint o) => (TypeFlags(o) & Py_TPFLAGS_TUPLE_SUBCLASS) != 0;
    public static bool IsLong(nint o) => (TypeFlags(o) & Py_TPFLAGS_LONG_SUBCLASS) != 0;
}
