using System.Runtime.InteropServices;
using Mlos.Smi.Abi;
using Mlos.Smi.Interop;
using Mlos.Smi.Sdk;
using TorchSharp;

namespace Mlos.Plugins.TorchSharp;

/// <summary>
/// Loads libtorch and TorchSharp's native shim by absolute path, once, before any torch type is
/// touched: inside a NativeAOT library, DllImport would search the host executable's folder.
/// The folder is the plugin's own, or <c>libtorch_dir</c> from the config (a CUDA build of
/// libtorch 2.10). Every attempt is recorded so that a failure names the real cause.
/// </summary>
internal static unsafe class TorchNative
{
    /// <summary>The version requirement the build's ELF fix-up weakens (see cmake/tools/elf_weak_version.c).</summary>
    public const string StrictGlibcxx = "GLIBCXX_3.4.32";

    private static readonly Lock s_lock = new();
    private static nint s_shim;
    private static string? s_dir;

    public static string? LoadedFrom => s_dir;

    public static void EnsureLoaded(string? libtorchDir)
    {
        lock (s_lock)
        {
            if (s_shim != 0)
            {
                if (libtorchDir is not null && Path.GetFullPath(libtorchDir) != s_dir)
                    throw new SmiException(SmiStatus.InvalidState, $"libtorch is already loaded from {s_dir}; a process can hold only one libtorch");
                return;
            }
            var pluginDir = SmiPluginHost.LibraryDirectory ?? AppContext.BaseDirectory;
            var torchDir = Path.GetFullPath(libtorchDir ?? pluginDir);
            var trace = new List<string>();
            var loaded = new Dictionary<string, nint>
            {
                ["libtorch_cpu"] = Open(Path.Combine(torchDir, "libtorch_cpu.so"), global: true, trace),
                ["libtorch_cuda"] = TryOpen(Path.Combine(torchDir, "libtorch_cuda.so"), global: true, trace), // CUDA builds only
                ["libtorch"] = Open(Path.Combine(torchDir, "libtorch.so"), global: true, trace),
            };
            // The shim comes with the plugin; a CUDA libtorch_dir may hold its own.
            var shimPath = File.Exists(Path.Combine(torchDir, "libLibTorchSharp.so")) ? Path.Combine(torchDir, "libLibTorchSharp.so") : Path.Combine(pluginDir, "libLibTorchSharp.so");
            var shim = Open(shimPath, global: false, trace);
            loaded["LibTorchSharp"] = loaded["libLibTorchSharp"] = shim;
            // TorchSharp's own loader asks for these names too: answering with the handles above
            // keeps it from loading a second libtorch from some other folder (two copies abort).
            DllImportResolver resolver = (name, _, _) => loaded.TryGetValue(name.EndsWith(".so") ? name[..^3] : name, out var h) ? h : 0;
            NativeLibrary.SetDllImportResolver(typeof(torch).Assembly, resolver);
            NativeLibrary.SetDllImportResolver(typeof(TorchNative).Assembly, resolver);
            s_shim = shim;
            s_dir = torchDir;
        }
    }

    private static nint Open(string path, bool global, List<string> trace)
    {
        var handle = TryOpen(path, global, trace);
        if (handle != 0) return handle;
        var why = trace[^1];
        var fix = why.Contains(StrictGlibcxx)
            ? $" The shim was built against a newer libstdc++; the build marks that requirement weak (cmake/tools/elf_weak_version.c): use the plugin folder the build produced, or run that tool on {Path.GetFileName(path)}."
            : !File.Exists(path)
                ? " Point \"libtorch_dir\" in the plugin config at a libtorch 2.10 lib folder, or keep the plugin beside the libraries the build copied."
                : "";
        throw new SmiException(SmiStatus.Runtime, $"cannot load libtorch: {why}.{fix} Attempts: {string.Join("; ", trace)}");
    }

    private static nint TryOpen(string path, bool global, List<string> trace)
    {
        if (!File.Exists(path))
        {
            trace.Add($"{path}: no such file");
            return 0;
        }
        byte* p = Utf8.Allocate(path);
        try
        {
            var handle = (nint)Libdl.Open(p, Libdl.RTLD_NOW | Libdl.RTLD_NODELETE | (global ? Libdl.RTLD_GLOBAL : 0));
            trace.Add(handle != 0 ? $"{path}: loaded" : $"{path}: {Libdl.LastError()}");
            return handle;
        }
        finally { NativeMemory.Free(p); }
    }
}

/// <summary>
/// Entries of TorchSharp's shim called directly: a tensor over memory we own (torch::from_blob,
/// which the managed API does not expose), and a module's forward. TorchSharp's managed
/// forward hands the shim a delegate for its result arrays, and under NativeAOT every call
/// then marshals a fresh delegate thunk (allocation, weak-table entry, finalizer): measured as
/// several microseconds per inference. Here the callback is a static function pointer.
/// </summary>
internal static unsafe partial class TorchShim
{
    /// <summary>The shim's TensorOrScalar: a tagged handle, or an index of a nested array.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct TensorOrScalar
    {
        public long TypeCode;
        public long ArrayIndex;
        public nint Handle;
    }

    // Result type codes the shim reports (ReturnHelper in TorchSharp's THSJIT.cpp).
    private const sbyte NotSupported = 0, SingleTensor = 1, TupleOfTensors = 2, ListOfTensors = 3, NoneResult = 8,
        ListOfAnything = 9, TupleOfAnything = 10;
    private const long EntryTensor = 0, EntryNone = 8;

    [LibraryImport("LibTorchSharp")]
    private static partial void THSJIT_Module_forward(nint module, TensorOrScalar* inputs, int length,
        delegate* unmanaged<int, nuint, TensorOrScalar*> allocator, sbyte* typeCode, int idx);

    [LibraryImport("LibTorchSharp")]
    private static partial nint THSJIT_load(byte* path, long deviceType, long deviceIndex);

    [LibraryImport("LibTorchSharp")]
    private static partial void THSJIT_Module_eval(nint module);

    [LibraryImport("LibTorchSharp")]
    private static partial void THSJIT_Module_dispose(nint module);

    /// <summary>Loads a TorchScript file onto a device, in eval mode; dispose with <see cref="DisposeModule"/>.</summary>
    public static nint LoadModule(string path, torch.Device device)
    {
        byte* p = Utf8.Allocate(path);
        try
        {
            var module = THSJIT_load(p, (long)device.type, device.index);
            if (module == 0) torch.CheckForErrors();
            if (module == 0) throw new SmiException(SmiStatus.Runtime, $"libtorch returned no module for {path}");
            THSJIT_Module_eval(module);
            return module;
        }
        finally { NativeMemory.Free(p); }
    }

    public static void DisposeModule(nint module)
    {
        if (module != 0) THSJIT_Module_dispose(module);
    }

    /// <summary>The result arrays the shim asked for during the current call on this thread, by index.</summary>
    [ThreadStatic] private static List<nint>? t_arrays;

    /// <summary>
    /// Runs forward on <paramref name="module"/> and returns its tensors in order (tuples and
    /// lists flattened depth-first); the caller owns them.
    /// </summary>
    public static List<torch.Tensor> Forward(nint module, ReadOnlySpan<torch.Tensor> inputs)
    {
        var arrays = t_arrays ??= new List<nint>();
        arrays.Clear();
        TensorOrScalar* args = stackalloc TensorOrScalar[inputs.Length];
        for (int i = 0; i < inputs.Length; i++) args[i] = new TensorOrScalar { TypeCode = EntryTensor, ArrayIndex = -1, Handle = inputs[i].Handle };
        sbyte typeCode = 0;
        var results = new List<torch.Tensor>();
        try
        {
            THSJIT_Module_forward(module, args, inputs.Length, &Allocate, &typeCode, 0);
            torch.CheckForErrors();
            switch (typeCode)
            {
                case SingleTensor:
                case TupleOfTensors:
                case ListOfTensors:
                case ListOfAnything:
                case TupleOfAnything:
                    Collect(arrays, 0, typeCode == SingleTensor ? 1 : -1, results);
                    return results;
                case NoneResult:
                    return results;
                default:
                    throw new SmiException(SmiStatus.NotSupported,
                        "forward returned a value TorchSharp's shim does not convert (Dict outputs among them): return a tensor, a tuple or a list of tensors");
            }
        }
        catch
        {
            foreach (var t in results) t.Dispose();
            throw;
        }
        finally
        {
            foreach (var a in arrays)
                if (a != 0) NativeMemory.Free((byte*)a - sizeof(long));
            arrays.Clear();
        }
    }

    /// <summary>Tensors of result array <paramref name="index"/> and the arrays it nests, depth-first.</summary>
    private static void Collect(List<nint> arrays, int index, int count, List<torch.Tensor> results)
    {
        var entries = (TensorOrScalar*)arrays[index];
        int n = count >= 0 ? count : (int)*(long*)((byte*)entries - sizeof(long));
        for (int i = 0; i < n; i++)
        {
            var e = entries[i];
            if (e.ArrayIndex >= 0 && e.TypeCode != EntryTensor) Collect(arrays, (int)e.ArrayIndex, -1, results);
            else if (e.TypeCode == EntryTensor && e.Handle != 0) results.Add(torch.Tensor.UnsafeCreateTensor(e.Handle));
            else if (e.TypeCode != EntryNone)
                throw new SmiException(SmiStatus.NotSupported, "forward returned a scalar; only tensor outputs are supported");
        }
    }

    /// <summary>
    /// The shim's allocator: zeroed native arrays, freed after the call. Each array is preceded
    /// by its length, which the shim does not report itself.
    /// </summary>
    [UnmanagedCallersOnly]
    private static TensorOrScalar* Allocate(int index, nuint length)
    {
        var block = (byte*)NativeMemory.AllocZeroed((nuint)sizeof(long) + length * (nuint)sizeof(TensorOrScalar));
        *(long*)block = (long)length;
        var arrays = t_arrays!;
        while (arrays.Count <= index) arrays.Add(0);
        arrays[index] = (nint)(block + sizeof(long));
        return (TensorOrScalar*)(block + sizeof(long));
    }

    [LibraryImport("LibTorchSharp")]
    private static partial nint THSTensor_new(void* data, delegate* unmanaged<nint, void> deleter, long* dims, int ndims,
        sbyte type, sbyte dtype, int deviceType, int deviceIndex, [MarshalAs(UnmanagedType.U1)] bool requiresGrad);

    /// <summary>A CPU tensor over <paramref name="data"/>, which must outlive it; no copy.</summary>
    public static torch.Tensor FromBlob(void* data, ReadOnlySpan<long> shape, torch.ScalarType type)
    {
        fixed (long* dims = shape)
        {
            var handle = THSTensor_new(data, &KeepMemory, dims, shape.Length, (sbyte)type, (sbyte)type, 0, -1, false);
            if (handle == 0) torch.CheckForErrors();
            return torch.Tensor.UnsafeCreateTensor(handle);
        }
    }

    /// <summary>The memory is the caller's: nothing to free when the tensor goes.</summary>
    [UnmanagedCallersOnly]
    private static void KeepMemory(nint data) { }
}
