using System.Runtime.InteropServices;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;
using static Mlos.Plugins.Python.CPython;

namespace Mlos.Plugins.Python;

/// <summary>
/// Typed tensors between SMI and Python. Inputs reach <c>infer(handle, inputs)</c> as read-only
/// numpy arrays over the caller's memory (no copy); outputs go back to the caller
/// without a copy too when it left the slot empty: the slot keeps the array's buffer exported and
/// its <c>release</c> gives it back under the GIL. Call with the GIL held.
/// </summary>
internal static unsafe class PythonTensors
{
    public static SmiModelIo ModelIo(nint instance, PythonModel model, PythonConfig cfg)
    {
        nint io = Py.Call(PythonRuntime.ModelIo, [instance, model.HandleObject]);
        try
        {
            if (io == None)
                throw new SmiException(SmiStatus.NotSupported, $"{cfg.Module}.{cfg.Class} has no get_model_io(handle)");
            return new SmiModelIo(Specs(PyTuple_GetItem(io, 0)), Specs(PyTuple_GetItem(io, 1)));
        }
        finally { Py.Release(io); }
    }

    private static SmiTensorSpec[] Specs(nint list)
    {
        var specs = new SmiTensorSpec[(int)PyList_Size(list)];
        for (int i = 0; i < specs.Length; i++)
        {
            nint item = PyList_GetItem(list, i);
            nint shape = PyTuple_GetItem(item, 2);
            int rank = (int)PyTuple_Size(shape);
            if (rank > SmiVersion.MaxDims)
                throw new SmiException(SmiStatus.NotSupported, $"get_model_io(): rank {rank} exceeds SMI_MAX_DIMS ({SmiVersion.MaxDims})");
            specs[i].Name = Utf8.Intern(Py.ToText(PyTuple_GetItem(item, 0))!);
            specs[i].Dtype = (SmiDtype)Py.ToLong(PyTuple_GetItem(item, 1));
            specs[i].NDim = (uint)rank;
            for (int d = 0; d < rank; d++) specs[i].Shape[d] = Py.ToLong(PyTuple_GetItem(shape, d));
        }
        return specs;
    }

    public static void Infer(nint instance, PythonModel model, SmiModelIo? io, ReadOnlySpan<SmiTensor> inputs, ref SmiOutputs outputs, PythonConfig cfg)
    {
        nint list = Py.Check(PyTuple_New(inputs.Length)), names = OutputNames(io), result = 0;
        try
        {
            for (int i = 0; i < inputs.Length; i++)
                PyTuple_SetItem(list, i, Input(in inputs[i], i, io)); // steals the item
            result = Py.Call(PythonRuntime.Infer, [instance, model.HandleObject, list, names]);
            if (IsLong(result)) PythonPlugin.RequireSuccess((int)Py.ToLong(result), cfg, "infer");
            int count = (int)PyList_Size(result);
            outputs.Reserve(count);
            for (int i = 0; i < count; i++) AddOutput(PyList_GetItem(result, i), ref outputs);
        }
        finally
        {
            Py.Release(list);
            Py.Release(names);
            Py.Release(result);
        }
    }

    /// <summary>(name, address, dtype, shape): the bridge module wraps the address in a read-only array.</summary>
    private static nint Input(in SmiTensor input, int index, SmiModelIo? io)
    {
        if (input.MemoryType == SmiMemoryType.Gpu)
            throw new SmiException(SmiStatus.NotSupported, "the Python bridge takes host-memory tensors only");
        string name = Utf8.Read(input.Name) ?? (io is { } m && index < m.Inputs.Length ? Utf8.Read(m.Inputs[index].Name)! : $"input_{index}");
        nint tuple = Py.Check(PyTuple_New(4));
        PyTuple_SetItem(tuple, 0, Py.Str(name));
        PyTuple_SetItem(tuple, 1, Py.Long(input.ByteSize == 0 ? 0 : (long)input.Data));
        PyTuple_SetItem(tuple, 2, Py.Long((long)input.Dtype));
        PyTuple_SetItem(tuple, 3, Shape(input.Dims));
        return tuple;
    }

    private static nint Shape(ReadOnlySpan<long> dims)
    {
        nint tuple = Py.Check(PyTuple_New(dims.Length));
        for (int d = 0; d < dims.Length; d++) PyTuple_SetItem(tuple, d, Py.Long(dims[d])); // steals the int
        return tuple;
    }

    private static nint OutputNames(SmiModelIo? io)
    {
        int n = io?.Outputs.Length ?? 0;
        nint tuple = Py.Check(PyTuple_New(n));
        for (int i = 0; i < n; i++) PyTuple_SetItem(tuple, i, Py.Str(Utf8.Read(io!.Outputs[i].Name)));
        return tuple;
    }

    /// <summary>(name, array, dtype, shape) from the bridge module; the array's buffer is exported to the caller.</summary>
    private static void AddOutput(nint item, ref SmiOutputs outputs)
    {
        byte* name = Utf8.Intern(Py.ToText(PyTuple_GetItem(item, 0))!);
        var dtype = (SmiDtype)Py.ToLong(PyTuple_GetItem(item, 2));
        nint shapeTuple = PyTuple_GetItem(item, 3);
        int rank = (int)PyTuple_Size(shapeTuple);
        if (rank > SmiVersion.MaxDims)
            throw new SmiException(SmiStatus.NotSupported, $"output {Utf8.Read(name)} has rank {rank}, more than SMI_MAX_DIMS ({SmiVersion.MaxDims})");
        long* dims = stackalloc long[SmiVersion.MaxDims];
        for (int d = 0; d < rank; d++) dims[d] = Py.ToLong(PyTuple_GetItem(shapeTuple, d));
        var shape = new ReadOnlySpan<long>(dims, rank);

        var view = (PyBuffer*)NativeMemory.AllocZeroed((nuint)sizeof(PyBuffer));
        if (PyObject_GetBuffer(PyTuple_GetItem(item, 1), view, PyBUF_SIMPLE) != 0)
        {
            NativeMemory.Free(view);
            throw PythonError.Take();
        }
        bool handedOver = false;
        try
        {
            handedOver = outputs.AddOwned(name, dtype, shape, view->Buf, (nuint)view->Len, &ReleaseOutput, view);
        }
        finally
        {
            if (!handedOver) Unexport(view);
        }
    }

    [UnmanagedCallersOnly]
    private static void ReleaseOutput(SmiTensor* tensor)
    {
        if (tensor == null || tensor->ReleaseContext == null) return;
        var view = (PyBuffer*)tensor->ReleaseContext;
        tensor->ReleaseContext = null;
        tensor->Release = null;
        tensor->Data = null;
        // An output released after the interpreter was finalized leaks its 80 bytes: nothing to give back to.
        if (!CPython.Loaded || Py_IsInitialized() == 0) return;
        using var gil = new Gil();
        Unexport(view);
    }

    private static void Unexport(PyBuffer* view)
    {
        PyBuffer_Release(view);
        NativeMemory.Free(view);
    }
}
