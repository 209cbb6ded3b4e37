using System.Runtime.InteropServices;
using Mlos.Smi.Abi;
using Mlos.Smi.Interop;

namespace Mlos.Smi.Sdk;

/// <summary>
/// Builds the <c>smi_plugin_t</c> of a C# plugin. The build generates the plugin's
/// <c>smi_plugin_init</c> export (see msbuild/Mlos.Smi.Plugin.targets), which calls
/// <see cref="Init{TModel}"/> once per process. Every table entry here is an
/// <see cref="UnmanagedCallersOnly"/> thunk that validates its arguments, calls the plugin and
/// turns any exception into a status plus the thread's last error: nothing thrown leaves.
/// </summary>
public static unsafe partial class SmiPluginHost
{
    private static readonly Lock s_initLock = new();
    private static SmiPlugin* s_descriptor;
    private static IPluginAdapter? s_plugin;

    /// <summary>The descriptor for <paramref name="plugin"/>; later calls return the first one.</summary>
    public static SmiPlugin* Init<TModel>(ISmiPlugin<TModel> plugin) where TModel : class
    {
        lock (s_initLock)
        {
            if (s_descriptor != null) return s_descriptor;
            PinSelf();
            s_plugin = new PluginAdapter<TModel>(plugin);
            var d = (SmiPlugin*)NativeMemory.AllocZeroed((nuint)sizeof(SmiPlugin));
            d->Interface = new SmiPluginInterface
            {
                Initialize = &Initialize,
                Cleanup = &Cleanup,
                RegisterModel = &RegisterModel,
                UnregisterModel = &UnregisterModel,
                LoadModel = &LoadModel,
                UnloadModel = &UnloadModel,
                Inference = &Inference,
                BatchInference = &BatchInference,
                AllocateResources = &AllocateResources,
                DeallocateResources = &DeallocateResources,
                GetModelInfo = &GetModelInfo,
                GetPluginName = &GetPluginName,
                GetPluginVersion = &GetPluginVersion,
                GetSupportedFrameworks = &GetSupportedFrameworks,
                GetSmiVersion = &GetSmiVersion,
            };
            d->PluginId = Utf8.Intern(plugin.PluginId);
            d->SmiVersion = SmiVersion.Current;
            d->V11 = new SmiPluginInterface11
            {
                Capabilities = plugin.Capabilities | SmiCapabilities.TypedInfer,
                GetModelIo = &GetModelIo,
                Infer = &Infer,
                GetLastError = &GetLastError,
            };
            d->V12 = new SmiPluginInterface12 { InferWithDeadline = &InferWithDeadline };
            d->V13 = new SmiPluginInterface13 { InferSelected = &InferSelected };
            s_descriptor = d;
            return d;
        }
    }

    /// <summary>
    /// A NativeAOT runtime cannot be unloaded, yet hosts such as the guide's harness dlclose
    /// plugins. Taking one more reference with RTLD_NODELETE keeps the image mapped for good.
    /// </summary>
    /// <summary>
    /// Folder of the plugin's own shared object, known once <c>smi_plugin_init</c> has run; null
    /// when the plugin is not a shared object (e.g. managed tests). Native dependencies are
    /// loaded from here: DllImport in a NativeAOT library searches the host's folder instead.
    /// </summary>
    public static string? LibraryDirectory { get; private set; }

    private static void PinSelf()
    {
        delegate* unmanaged<byte*, SmiStatus> probe = &Initialize;
        string? path = Libdl.PathOf(probe);
        if (path is null) return; // statically linked into the host: nothing to pin
        LibraryDirectory = Path.GetDirectoryName(Path.GetFullPath(path));
        byte* p = Utf8.Allocate(path);
        try { Libdl.Open(p, Libdl.RTLD_NOW | Libdl.RTLD_NOLOAD | Libdl.RTLD_NODELETE); }
        finally { NativeMemory.Free(p); }
    }

    private static IPluginAdapter Plugin => s_plugin ?? throw new InvalidOperationException("smi_plugin_init was not called");
}
