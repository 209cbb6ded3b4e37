using System.Runtime.InteropServices;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Core.Plugins;

/// <summary>An <c>smi_model_metadata_t</c> with its strings in native memory for one register call.</summary>
internal sealed unsafe class NativeMetadata : IDisposable
{
    private readonly SmiModelMetadata* _metadata;

    public NativeMetadata(string name, string? framework, string? version, NativePath? path, string? config)
    {
        _metadata = (SmiModelMetadata*)NativeMemory.AllocZeroed((nuint)sizeof(SmiModelMetadata));
        _metadata->Name = Utf8.Allocate(name);
        // Never NULL: plugins written after the guide's example printf("%s") it unchecked.
        _metadata->Framework = Utf8.Allocate(framework ?? "");
        _metadata->Version = Copy(version);
        _metadata->Path = Copy(path);
        _metadata->Config = Copy(config);
    }

    public SmiModelMetadata* Pointer => _metadata;

    public void Dispose()
    {
        NativeMemory.Free(_metadata->Name);
        NativeMemory.Free(_metadata->Framework);
        NativeMemory.Free(_metadata->Version);
        NativeMemory.Free(_metadata->Path);
        NativeMemory.Free(_metadata->Config);
        NativeMemory.Free(_metadata);
    }

    private static byte* Copy(string? s) => s is null ? null : Utf8.Allocate(s);

    /// <summary>The path's own bytes: a path need not be UTF-8.</summary>
    private static byte* Copy(NativePath? path)
    {
        if (path is null) return null;
        byte* p = (byte*)NativeMemory.Alloc((nuint)path.Terminated.Length);
        path.Terminated.CopyTo(new Span<byte>(p, path.Terminated.Length));
        return p;
    }
}
