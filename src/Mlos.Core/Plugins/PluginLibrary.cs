using System.Runtime.InteropServices;
using Mlos.Smi.Abi;
using Mlos.Smi.Interop;
using Mlos.Smi.Sdk;

namespace Mlos.Core.Plugins;

/// <summary>
/// A plugin shared object opened with dlopen and checked against the SMI rules. Libraries are
/// never unloaded (RTLD_NODELETE): NativeAOT runtimes cannot be, and a handle may outlive any
/// bookkeeping. A plugin keeps process-wide state, so one core at a time may own a library.
/// </summary>
internal sealed unsafe class PluginLibrary
{
    private static readonly Lock s_claimsLock = new();
    private static readonly Dictionary<nint, string> s_claims = new();

    private PluginLibrary(NativePath path, nint handle, SmiPlugin* descriptor)
    {
        Path = path;
        Handle = handle;
        Descriptor = descriptor;
    }

    public NativePath Path { get; }
    public nint Handle { get; }
    public SmiPlugin* Descriptor { get; }

    /// <summary>
    /// The checks of a plugin path that run none of its code: not empty, there, a regular file
    /// (dlopen of a FIFO blocks until someone writes to it). The path made absolute, else the
    /// reason; done here for an isolated plugin too, before any host process is started for it.
    /// </summary>
    public static NativePath CheckFile(NativePath? path)
    {
        if (path is null || path.Text.Trim().Length == 0)
            throw new MlosException(SmiStatus.InvalidParam, "plugin path must not be empty");
        var full = path.Absolute();
        var kind = FileKind.Of(full.Terminated);
        if (kind == FileKind.Kind.Missing)
            throw new MlosException(SmiStatus.NotFound, $"plugin file not found: {full}");
        if (kind == FileKind.Kind.Directory)
            throw new MlosException(SmiStatus.InvalidParam, $"plugin path {full} is a directory, not a plugin file");
        if (kind != FileKind.Kind.Regular)
            throw new MlosException(SmiStatus.InvalidParam, $"plugin path {full} is not a regular file ({FileKind.Describe(kind)})");
        return full;
    }

    /// <summary>Opens and validates a plugin (<see cref="CheckFile"/> first); throws <see cref="MlosException"/> with the reason.</summary>
    public static PluginLibrary Open(NativePath? path)
    {
        var full = CheckFile(path);

        void* handle;
        fixed (byte* p = full.Terminated) handle = Libdl.Open(p, Libdl.RTLD_NOW | Libdl.RTLD_NODELETE);
        if (handle == null)
            throw new MlosException(SmiStatus.InvalidParam, $"cannot load plugin {full}: {Libdl.LastError()}"); // not a library this system can load

        void* init;
        fixed (byte* symbol = "smi_plugin_init"u8)
            init = Libdl.Symbol(handle, symbol);
        if (init == null)
            throw new MlosException(SmiStatus.NotFound, $"{full} is not an SMI plugin: it does not export smi_plugin_init");

        var descriptor = ((delegate* unmanaged<SmiPlugin*>)init)();
        if (descriptor == null)
            throw new MlosException(SmiStatus.Runtime, $"smi_plugin_init of {full} returned NULL");
        Validate(full.Text, descriptor);
        return new PluginLibrary(full, (nint)handle, descriptor);
    }

    private static void Validate(string path, SmiPlugin* d)
    {
        uint major = SmiVersion.GetMajor(d->SmiVersion);
        if (major != SmiVersion.Major)
            throw new MlosException(SmiStatus.VersionMismatch,
                $"plugin {path} was built for SMI {SmiVersion.Format(d->SmiVersion)}; this core speaks SMI {SmiVersion.Format(SmiVersion.Current)} and needs major version {SmiVersion.Major}");
        if (d->PluginId == null)
            throw new MlosException(SmiStatus.InvalidParam, $"plugin {path} has a NULL plugin_id");
        var api = &d->Interface;
        string? missing =
            api->Initialize == null ? "initialize" :
            api->RegisterModel == null ? "register_model" :
            api->Inference == null ? "inference" :
            api->GetPluginName == null ? "get_plugin_name" :
            api->GetPluginVersion == null ? "get_plugin_version" : null;
        if (missing != null)
            throw new MlosException(SmiStatus.InvalidParam, $"plugin {path} leaves the required entry '{missing}' NULL");
    }

    /// <summary>Claims the library for one owner; fails when another plugin id already holds it.</summary>
    public void Claim(string pluginId)
    {
        lock (s_claimsLock)
        {
            if (s_claims.TryGetValue(Handle, out var owner))
                throw new MlosException(SmiStatus.AlreadyExists, $"plugin library {Path} is already loaded as '{owner}'");
            s_claims[Handle] = pluginId;
        }
    }

    public void Release()
    {
        lock (s_claimsLock) s_claims.Remove(Handle);
    }
}
