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

    public static void DisableUnlessAsked() => SetEnv(Variable, "1", overwrite: 0);

    [LibraryImport("libc.so.6", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);
}
