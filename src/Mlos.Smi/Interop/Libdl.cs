using System.Runtime.InteropServices;

namespace Mlos.Smi.Interop;

/// <summary>
/// The one boundary file for the dynamic loader (glibc's dlopen family). Named by its soname:
/// inside a NativeAOT library a bare "libc" would be probed as "libc.so", a linker script.
/// </summary>
public static unsafe partial class Libdl
{
    private const string LibC = "libc.so.6";

    /// <summary>
    /// Binds dlerror before any dlopen: the first call of a P/Invoke resolves its target with
    /// dlsym, which would clear the very error a failed dlopen just left for us to read.
    /// </summary>
    static Libdl() => Error();

    public const int RTLD_LAZY = 0x0001;
    public const int RTLD_NOW = 0x0002;
    public const int RTLD_NOLOAD = 0x0004;
    public const int RTLD_GLOBAL = 0x0100;
    public const int RTLD_NODELETE = 0x1000;

    [StructLayout(LayoutKind.Sequential)]
    public struct DlInfo
    {
        public byte* FileName;
        public void* FileBase;
        public byte* SymbolName;
        public void* SymbolAddress;
    }

    [LibraryImport(LibC, EntryPoint = "dlopen")]
    public static partial void* Open(byte* path, int flags);

    [LibraryImport(LibC, EntryPoint = "dlsym")]
    public static partial void* Symbol(void* handle, byte* name);

    [LibraryImport(LibC, EntryPoint = "dlerror")]
    public static partial byte* Error();

    [LibraryImport(LibC, EntryPoint = "dladdr")]
    public static partial int Address(void* address, DlInfo* info);

    /// <summary>The last dlerror() text, or a fallback.</summary>
    public static string LastError() => Marshal.PtrToStringUTF8((nint)Error()) ?? "unknown dynamic loader error";

    /// <summary>Path of the shared object that contains <paramref name="address"/>, or null.</summary>
    public static string? PathOf(void* address)
    {
        DlInfo info;
        return Address(address, &info) != 0 ? Marshal.PtrToStringUTF8((nint)info.FileName) : null;
    }
}
