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
/// The one entry of TorchSharp's shim that its managed API does not expose: a tensor over
/// memory we own (torch::from_blob), which makes typed inputs zero-copy.
/// </summary>
internal static unsafe partial class TorchShim
{
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
