using System.Runtime.InteropServices;
using System.Text;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;
using static Mlos.Plugins.Python.CPython;

namespace Mlos.Plugins.Python;

/// <summary>
/// Holds the GIL for a scope: PyGILState_Ensure works from any thread, including host threads
/// Python has never seen (it creates their thread state), and nests.
/// </summary>
internal unsafe readonly ref struct Gil
{
    private readonly int _state;
    public Gil() => _state = PyGILState_Ensure();
    public void Dispose() => PyGILState_Release(_state);
}

/// <summary>Small helpers over the C API: new references in, managed values out. Call with the GIL held.</summary>
internal static unsafe class Py
{
    /// <summary>Drops a reference; null-safe.</summary>
    public static void Release(nint o)
    {
        if (o != 0) Py_DecRef(o);
    }

    public static nint Str(string? s)
    {
        if (s is null) { Py_IncRef(None); return None; }
        int n = Encoding.UTF8.GetByteCount(s);
        Span<byte> bytes = n <= 512 ? stackalloc byte[n] : new byte[n];
        Encoding.UTF8.GetBytes(s, bytes);
        fixed (byte* p = bytes) return Check(PyUnicode_FromStringAndSize(p, n));
    }

    /// <summary>The text of a str object, or null for None; throws on anything else.</summary>
    public static string? ToText(nint o)
    {
        if (o == None) return null;
        nint size;
        byte* p = PyUnicode_AsUTF8AndSize(o, &size);
        if (p == null) throw PythonError.Take();
        return Encoding.UTF8.GetString(p, (int)size);
    }

    public static nint Long(long v) => Check(PyLong_FromLongLong(v));

    public static long ToLong(nint o)
    {
        long v = PyLong_AsLongLong(o);
        if (v == -1 && PyErr_Occurred() != 0) throw PythonError.Take();
        return v;
    }

    /// <summary>callable(args...): a new reference; a Python exception becomes a <see cref="SmiException"/>.</summary>
    public static nint Call(nint callable, ReadOnlySpan<nint> args)
    {
        // One spare slot in front lets CPython prepend `self` for bound methods without copying.
        Span<nint> slots = stackalloc nint[args.Length + 1];
        args.CopyTo(slots[1..]);
        fixed (nint* p = slots)
            return Check(PyObject_Vectorcall(callable, p + 1, Nargs(args.Length), 0));
    }

    public static nint Check(nint result) => result != 0 ? result : throw PythonError.Take();

    public static void Check(int rc)
    {
        if (rc != 0) throw PythonError.Take();
    }
}

/// <summary>Turns the pending Python exception into an <see cref="SmiException"/>.</summary>
internal static unsafe class PythonError
{
    /// <summary>Set once the bridge module is running: formats exceptions with their user frame.</summary>
    public static nint Describe;

    /// <summary>
    /// Takes (and clears) the pending exception. Python exceptions are SMI_ERROR_RUNTIME with the
    /// exception text, except those the bridge raises on purpose (see mlos_python_bridge.py).
    /// </summary>
    public static SmiException Take(SmiStatus status = SmiStatus.Runtime)
    {
        nint type, value, traceback;
        PyErr_Fetch(&type, &value, &traceback);
        if (type == 0) return new SmiException(status, "Python call failed without an exception");
        PyErr_NormalizeException(&type, &value, &traceback);
        if (traceback != 0 && value != 0) PyException_SetTraceback(value, traceback);
        try
        {
            return new SmiException(status, Text(value));
        }
        finally
        {
            Py.Release(type);
            Py.Release(value);
            Py.Release(traceback);
        }
    }

    private static string Text(nint value)
    {
        if (value == 0) return "Python exception without a value";
        nint text = 0;
        if (Describe != 0)
        {
            nint* args = stackalloc nint[2];
            args[1] = value;
            text = PyObject_Vectorcall(Describe, args + 1, Nargs(1), 0);
        }
        if (text == 0)
        {
            PyErr_Clear();
            text = PyObject_Str(value);
        }
        if (text == 0)
        {
            PyErr_Clear();
            return "Python exception (its text could not be read)";
        }
        try
        {
            nint size;
            byte* p = PyUnicode_AsUTF8AndSize(text, &size);
            if (p == null) { PyErr_Clear(); return "Python exception (its text is not UTF-8)"; }
            return Encoding.UTF8.GetString(p, (int)size);
        }
        finally { Py.Release(text); }
    }
}
