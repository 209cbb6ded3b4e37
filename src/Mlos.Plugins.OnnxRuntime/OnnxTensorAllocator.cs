using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Mlos.Smi.Sdk;

namespace Mlos.Plugins.OnnxRuntime;

/// <summary>
/// ONNX Runtime's CPU memory for sessions without its arena (the default, see
/// <see cref="OnnxConfig.CpuMemArena"/>): one allocator of ours, registered once in the process's
/// environment and used by every such session ("session.use_env_allocators"), that takes every
/// block from <see cref="TensorMemory"/>. Without it a large output is a plain malloc block, an
/// mmap of its own, faulted in 4 KiB page by page on every request; on the 2-core VM a fresh
/// 4 MiB output costs 4.65 ms in faults against a 0.2 ms copy, more than the model itself.
/// Blocks still go back to the system when freed, as malloc's did.
/// </summary>
internal static unsafe class OnnxTensorAllocator
{
    /// <summary>onnxruntime_c_api.h's OrtAllocator as of version 17: the fields read for that version.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct OrtAllocator
    {
        public uint Version;
        public delegate* unmanaged<OrtAllocator*, nuint, void*> Alloc;
        public delegate* unmanaged<OrtAllocator*, void*, void> Free;
        public delegate* unmanaged<OrtAllocator*, nint> Info;
    }

    private static readonly Lock s_lock = new();
    private static OrtAllocator* s_allocator;
    private static nint s_info;
    private static bool s_tried;

    /// <summary>
    /// Whether sessions can use it: registers it at the first call once the environment exists.
    /// False where registering failed (an older ONNX Runtime refuses a second CPU allocator
    /// another library registered first): sessions then keep ONNX Runtime's own, with one log line.
    /// </summary>
    public static bool Registered
    {
        get
        {
            lock (s_lock)
            {
                if (!s_tried && OrtEnv.IsCreated) Register();
                return s_allocator != null;
            }
        }
    }

    private static void Register()
    {
        s_tried = true;
        nint info;
        OrtCApi.Check(OrtCApi.CreateCpuMemoryInfo(0 /* OrtDeviceAllocator */, 0 /* OrtMemTypeDefault */, &info), "CreateCpuMemoryInfo");
        var allocator = (OrtAllocator*)NativeMemory.AllocZeroed((nuint)sizeof(OrtAllocator));
        allocator->Version = 17;
        allocator->Alloc = &Alloc;
        allocator->Free = &Free;
        allocator->Info = &Info;
        s_info = info;
        nint status = OrtCApi.RegisterAllocator(OrtEnv.Instance().DangerousGetHandle(), allocator);
        if (status == 0)
        {
            s_allocator = allocator; // lives as long as the environment: never freed
            return;
        }
        string message = Marshal.PtrToStringUTF8(OrtCApi.GetErrorMessage(status)) ?? "unknown error";
        OrtCApi.ReleaseStatus(status);
        NativeMemory.Free(allocator);
        OrtCApi.ReleaseMemoryInfo(info);
        s_info = 0;
        Console.Error.WriteLine($"[mlos-onnx] sessions keep ONNX Runtime's own CPU allocator: {message.Trim()}");
    }

    // Called by ONNX Runtime from any of its threads; nothing may throw across it.
    [UnmanagedCallersOnly]
    private static void* Alloc(OrtAllocator* self, nuint bytes)
    {
        try { return TensorMemory.Alloc(bytes); }
        catch (OutOfMemoryException) { return null; } // ONNX Runtime reports the failed allocation
    }

    [UnmanagedCallersOnly]
    private static void Free(OrtAllocator* self, void* data)
    {
        try { TensorMemory.Free(data); }
        catch (Exception) { } // nothing to tell ONNX Runtime; a block not freed beats a process brought down
    }

    [UnmanagedCallersOnly]
    private static nint Info(OrtAllocator* self) => s_info;
}
