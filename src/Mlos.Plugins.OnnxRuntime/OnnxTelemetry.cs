using System.Runtime.InteropServices;

namespace Mlos.Plugins.OnnxRuntime;

/// <summary>
/// ONNX Runtime (1.29 on, on Linux too) collects telemetry by default: a device id and an event
/// cache under <c>$XDG_CACHE_HOME/Microsoft/DeveloperTools/.onnxruntime</c>, uploaded to
/// Microsoft. A model server must not phone home unasked, so <c>ORT_DISABLE_TELEMETRY=1</c> is set
/// before ONNX Runtime makes its environment (it reads the variable once, then), unless the
/// operator set the variable already. It goes into the process's native environment (setenv):
/// on Unix, .NET's Environment.SetEnvironmentVariable changes a managed copy that ONNX Runtime's
/// getenv never sees.
/// </summary>
internal static partial class OnnxTelemetry
{
    public const string Variable = "ORT_DISABLE_TELEMETRY";

    /// <summary>
    /// Once, from the plugin's first initialize, before ONNX Runtime starts. setenv is not safe
    /// beside a concurrent getenv in native code; it runs once, early, and the .NET runtimes in the
    /// process read their own copy of the environment. A C library without setenv (a libc other
    /// than glibc's soname) leaves ONNX Runtime's default: the plugin still starts.
    /// </summary>
    public static void DisableUnlessAsked()
    {
        try { SetEnv(Variable, "1", overwrite: 0); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
    }

    [LibraryImport("libc.so.6", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);
}
