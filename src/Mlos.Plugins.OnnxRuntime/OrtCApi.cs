using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Plugins.OnnxRuntime;

/// <summary>
/// The one boundary file for ONNX Runtime's C API, used on the inference hot path. The managed
/// API (sessions, options, metadata) stays for everything else; per request it would make
/// OrtValue objects with finalizers, shape arrays and type-info objects, which under NativeAOT
/// cost about as much as a small model's whole run. Entries are read from the versioned OrtApi
/// table by index: the table is append-only, so indices never move (onnxruntime_c_api.h).
/// </summary>
internal static unsafe class OrtCApi
{
    /// <summary>Oldest table version holding every entry used here; any newer runtime serves it.</summary>
    private const uint ApiVersion = 17;

    private static void** s_api;

    private static void** Api => s_api != null ? s_api : Bind();

    private static void** Bind()
    {
        // The very library the managed API loaded: two copies in one process would each have their
        // own type registry ("expected tensor(float), got tensor(float)").
        var lib = OnnxNative.Handle();
        var getApiBase = (delegate* unmanaged<void**>)NativeLibrary.GetExport(lib, "OrtGetApiBase");
        var getApi = (delegate* unmanaged<uint, void**>)getApiBase()[0];
        var api = getApi(ApiVersion);
        if (api == null) throw new SmiException(SmiStatus.NotSupported, $"this ONNX Runtime does not serve C API version {ApiVersion}");
        return s_api = api;
    }

    // Indices into OrtApi.
    public static int GetErrorCode(nint status) => ((delegate* unmanaged<nint, int>)Api[1])(status);
    public static nint GetErrorMessage(nint status) => (nint)((delegate* unmanaged<nint, byte*>)Api[2])(status);
    public static nint Run(nint session, nint runOptions, byte** inputNames, nint* inputs, nuint inputCount, byte** outputNames, nuint outputCount, nint* outputs) =>
        ((delegate* unmanaged<nint, nint, byte**, nint*, nuint, byte**, nuint, nint*, nint>)Api[9])(session, runOptions, inputNames, inputs, inputCount, outputNames, outputCount, outputs);
    public static nint CreateTensorWithDataAsOrtValue(nint memoryInfo, void* data, nuint bytes, long* shape, nuint rank, int type, nint* value) =>
        ((delegate* unmanaged<nint, void*, nuint, long*, nuint, int, nint*, nint>)Api[49])(memoryInfo, data, bytes, shape, rank, type, value);
    public static nint GetTensorMutableData(nint value, void** data) => ((delegate* unmanaged<nint, void**, nint>)Api[51])(value, data);
    public static nint GetTensorElementType(nint info, int* type) => ((delegate* unmanaged<nint, int*, nint>)Api[60])(info, type);
    public static nint GetDimensionsCount(nint info, nuint* count) => ((delegate* unmanaged<nint, nuint*, nint>)Api[61])(info, count);
    public static nint GetDimensions(nint info, long* dims, nuint count) => ((delegate* unmanaged<nint, long*, nuint, nint>)Api[62])(info, dims, count);
    public static nint GetTensorShapeElementCount(nint info, nuint* count) => ((delegate* unmanaged<nint, nuint*, nint>)Api[64])(info, count);
    public static nint GetTensorTypeAndShape(nint value, nint* info) => ((delegate* unmanaged<nint, nint*, nint>)Api[65])(value, info);
    public static nint CreateCpuMemoryInfo(int allocator, int memType, nint* info) => ((delegate* unmanaged<int, int, nint*, nint>)Api[69])(allocator, memType, info);
    public static void ReleaseStatus(nint status) => ((delegate* unmanaged<nint, void>)Api[93])(status);
    public static void ReleaseMemoryInfo(nint info) => ((delegate* unmanaged<nint, void>)Api[94])(info);
    public static void ReleaseValue(nint value) => ((delegate* unmanaged<nint, void>)Api[96])(value);
    public static void ReleaseTensorTypeAndShapeInfo(nint info) => ((delegate* unmanaged<nint, void>)Api[99])(info);
    public static nint RegisterAllocator(nint env, void* allocator) => ((delegate* unmanaged<nint, void*, nint>)Api[176])(env, allocator);

    /// <summary>
    /// Throws the status's message and frees it; no-op for success. ONNX Runtime's
    /// ORT_INVALID_ARGUMENT means the input does not suit the graph (a value an operator refuses):
    /// the caller's mistake, INVALID_PARAM; anything else is SMI_ERROR_RUNTIME.
    /// </summary>
    public static void Check(nint status, string context)
    {
        if (status == 0) return;
        string message = Marshal.PtrToStringUTF8(GetErrorMessage(status)) ?? "unknown error";
        var code = GetErrorCode(status) == OrtInvalidArgument ? SmiStatus.InvalidParam : SmiStatus.Runtime;
        ReleaseStatus(status);
        throw new SmiException(code, $"{context}: {message.Trim()}");
    }

    private const int OrtInvalidArgument = 2; // OrtErrorCode: ORT_OK, ORT_FAIL, ORT_INVALID_ARGUMENT, ...

    /// <summary>The OrtSession* behind a managed session (no reflection: resolved at compile time).</summary>
    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_nativeHandle")]
    public static extern ref nint SessionHandle(InferenceSession session);

    private static nint s_cpu;

    /// <summary>An OrtMemoryInfo for host memory (arena allocator, default memory type), made once.</summary>
    public static nint CpuMemory
    {
        get
        {
            if (s_cpu != 0) return s_cpu;
            nint info;
            Check(CreateCpuMemoryInfo(1 /* OrtArenaAllocator */, 0 /* OrtMemTypeDefault */, &info), "CreateCpuMemoryInfo");
            nint kept = Interlocked.CompareExchange(ref s_cpu, info, 0);
            if (kept != 0) ReleaseMemoryInfo(info); // another thread made it first
            return s_cpu;
        }
    }
}
