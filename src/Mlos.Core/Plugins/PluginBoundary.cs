using Mlos.Smi.Abi;

namespace Mlos.Core.Plugins;

/// <summary>The optional SMI entries a plugin has (a NULL entry, or one its SMI version predates, is absent).</summary>
[Flags]
internal enum PluginEntries
{
    None = 0,
    Cleanup = 1 << 0,
    UnregisterModel = 1 << 1,
    LoadModel = 1 << 2,
    UnloadModel = 1 << 3,
    AllocateResources = 1 << 4,
    DeallocateResources = 1 << 5,
    GetModelInfo = 1 << 6,
    GetSupportedFrameworks = 1 << 7,
    GetModelIo = 1 << 8,
    Infer = 1 << 9,
    GetLastError = 1 << 10,
    InferWithDeadline = 1 << 11,
    InferSelected = 1 << 12,
}

/// <summary>
/// The raw SMI entries of one plugin, each returning the plugin's own status: where the plugin
/// runs is this class's business only (in this process, <see cref="InProcessBoundary"/>; in a
/// plugin host of its own, later). <see cref="Plugin"/> sits on top and does everything else —
/// the gate, the checks of what comes back, the messages — so that every kind of boundary is
/// distrusted the same way. A caller asks <see cref="Entries"/> before calling an optional entry.
/// </summary>
internal abstract unsafe class PluginBoundary
{
    /// <summary>The SMI version the plugin was built against (smi_plugin_t::smi_version).</summary>
    public abstract uint SmiVersion { get; }

    /// <summary>The id the plugin gives itself (smi_plugin_t::plugin_id), "" when it gives none.</summary>
    public abstract string NativeId { get; }

    /// <summary>SMI_CAP_* flags (SMI 1.1); none for an older plugin.</summary>
    public abstract SmiCapabilities Capabilities { get; }

    public abstract PluginEntries Entries { get; }

    public bool Has(PluginEntries entry) => (Entries & entry) == entry;

    /// <summary>The plugin's name, version and frameworks, copied out of its memory (null where it gives none).</summary>
    public abstract (string? Name, string? Version, string? Frameworks) Describe();

    /// <summary>The message of the last failed call on this thread, copied (null when there is none or no entry for it).</summary>
    public abstract string? LastError();

    public abstract SmiStatus Initialize(byte* config);
    public abstract SmiStatus Cleanup();
    public abstract SmiStatus RegisterModel(SmiModelMetadata* metadata, nint* handle);
    public abstract SmiStatus UnregisterModel(nint handle);
    public abstract SmiStatus LoadModel(nint handle, byte* path);
    public abstract SmiStatus UnloadModel(nint handle);
    public abstract SmiStatus AllocateResources(nint handle, SmiResourceReq* requirements, nuint count);
    public abstract SmiStatus DeallocateResources(nint handle);
    public abstract SmiStatus GetModelInfo(nint handle, byte* json, nuint* size);
    public abstract SmiStatus GetModelIo(nint handle, SmiTensorSpec* inputs, nuint* numInputs, SmiTensorSpec* outputs, nuint* numOutputs);
    public abstract SmiStatus Inference(nint handle, void* input, nuint inputSize, void* output, nuint* outputSize);
    public abstract SmiStatus Infer(nint handle, SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs);
    public abstract SmiStatus InferWithDeadline(nint handle, SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs, ulong deadline);
    public abstract SmiStatus InferSelected(nint handle, SmiTensor* inputs, nuint numInputs, byte** names, nuint numNames, SmiTensor* outputs, nuint* numOutputs, ulong deadline);

    /// <summary>Whether the plugin can take calls (a plugin host that died, and is not back yet, cannot).</summary>
    public virtual bool IsAlive => true;

    /// <summary>
    /// Sets how long an inference call on the model of <paramref name="handle"/> may run before
    /// the boundary stops the plugin's process (a model's <c>call_timeout_ms</c>, over the
    /// plugin's); false in process, where a running call cannot be stopped.
    /// </summary>
    public virtual bool LimitCalls(nint handle, int timeoutMs) => false;

    /// <summary>Where the plugin's process stands when it is not this one; null in process.</summary>
    public virtual Isolation.HostState? Host => null;

    /// <summary>Every host process of the plugin (several with <c>instances</c>), null in process.</summary>
    public virtual IReadOnlyList<Isolation.HostState>? Hosts => Host is { } h ? [h] : null;

    /// <summary>Lets the plugin go once the core is done with it (its library becomes free for another core).</summary>
    public abstract void Close();
}
