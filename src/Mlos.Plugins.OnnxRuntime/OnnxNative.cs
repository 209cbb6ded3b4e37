using System.Reflection;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Mlos.Smi.Sdk;

namespace Mlos.Plugins.OnnxRuntime;

/// <summary>
/// Makes ONNX Runtime's <c>DllImport("onnxruntime")</c> find <c>libonnxruntime.so</c> beside this
/// plugin. Inside a NativeAOT library, DllImport probes the host executable's folder, not the
/// plugin's, so a host in another folder would fail or pick up a different ONNX Runtime. Runs
/// once, before any ONNX Runtime type is touched (ONNX Runtime's telemetry is turned off then, see <see cref="OnnxTelemetry"/>).
/// </summary>
internal static class OnnxNative
{
    private static readonly Lock s_lock = new();
    private static bool s_done;

    public static void EnsureResolver()
    {
        lock (s_lock)
        {
            if (s_done) return;
            OnnxTelemetry.DisableUnlessAsked();
            var dir = SmiPluginHost.LibraryDirectory;
            if (dir is not null)
                NativeLibrary.SetDllImportResolver(typeof(OrtEnv).Assembly, (name, _, _) => Resolve(dir, name));
            s_done = true;
        }
    }

    /// <summary>The libonnxruntime.so the managed API uses (loading it again returns the same handle).</summary>
    public static nint Handle()
    {
        EnsureResolver();
        var dir = SmiPluginHost.LibraryDirectory;
        if (dir is not null && Resolve(dir, "onnxruntime") is var beside and not 0) return beside;
        return NativeLibrary.Load("onnxruntime", typeof(OrtEnv).Assembly, null);
    }

    private static nint Resolve(string dir, string name)
    {
        if (name != "onnxruntime") return 0;
        var path = Path.Combine(dir, "libonnxruntime.so");
        if (!File.Exists(path)) return 0; // fall back to the system's search path
        return NativeLibrary.Load(path);
    }
}
