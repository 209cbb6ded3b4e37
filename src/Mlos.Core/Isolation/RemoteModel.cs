using System.Runtime.InteropServices;

namespace Mlos.Core.Isolation;

/// <summary>
/// A model registered with an isolated plugin, as the core knows it: the handle the host's plugin
/// gave it, and the names its specs and outputs carry. SMI says such names are plugin-owned and
/// valid while the model is registered, so the core keeps one copy of each here (its own memory:
/// the host's cannot be trusted to stay put) and frees them when the model is unregistered.
/// </summary>
internal sealed unsafe class RemoteModel(ulong hostHandle, string name, RemoteModel.Registration registration) : IDisposable
{
    /// <summary>What register_model was given, kept to register the model again with a restarted host.</summary>
    public sealed record Registration(byte[]? Name, byte[]? Framework, byte[]? Version, byte[]? Path, byte[]? Config);

    /// <summary>More distinct names than any model has: past it, the host is making them up.</summary>
    public const int MaxNames = 4096;

    /// <summary>The names copied so far, replaced (never changed) under <see cref="_lock"/>: read without a lock on every call.</summary>
    private volatile Copied[] _names = [];
    private readonly Lock _lock = new();

    private sealed record Copied(byte[] Bytes, nint Copy);

    /// <summary>The handle the host's plugin gave the model (a restarted host gives another).</summary>
    public ulong HostHandle { get => Volatile.Read(ref _hostHandle); set => Volatile.Write(ref _hostHandle, value); }
    private ulong _hostHandle = hostHandle;
    public string Name { get; } = name;
    public Registration Registered { get; } = registration;

    /// <summary>The model's own <c>call_timeout_ms</c> (kept across restarts); 0: the plugin's.</summary>
    public int CallTimeoutMs { get; set; }

    /// <summary>The path load_model was given while the model is loaded (null bytes: loaded without one); null when not loaded.</summary>
    public volatile LoadState? Loaded;

    public sealed record LoadState(byte[]? Path);

    /// <summary>What allocate_resources last succeeded with, while held (null after deallocate or before any).</summary>
    public volatile Allocation? Allocated;

    /// <summary>Requirements as given, and whether the model was loaded then (a restart replays them in that order).</summary>
    public sealed record Allocation(Mlos.Smi.Abi.SmiResourceReq[] Requirements, bool AfterLoad);

    /// <summary>
    /// The core's copy of <paramref name="name"/> as a C string. A model has a few names and each
    /// call answers with the same ones: found by comparing bytes, with no allocation per call.
    /// </summary>
    public byte* Intern(ReadOnlySpan<byte> name)
    {
        if (Find(_names, name) is { } known) return (byte*)known;
        lock (_lock)
        {
            var names = _names;
            if (Find(names, name) is { } raced) return (byte*)raced;
            if (names.Length >= MaxNames)
                throw Wire.WireReader.Malformed($"model '{Name}' has more than {MaxNames} distinct tensor names");
            var copy = (byte*)NativeMemory.Alloc((nuint)name.Length + 1);
            name.CopyTo(new Span<byte>(copy, name.Length));
            copy[name.Length] = 0;
            _names = [.. names, new Copied(name.ToArray(), (nint)copy)];
            return copy;
        }
    }

    private static nint? Find(Copied[] names, ReadOnlySpan<byte> name)
    {
        foreach (var n in names)
            if (name.SequenceEqual(n.Bytes)) return n.Copy;
        return null;
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var n in _names) NativeMemory.Free((void*)n.Copy);
            _names = [];
        }
    }
}
