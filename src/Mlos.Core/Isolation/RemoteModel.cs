using System.Runtime.InteropServices;

namespace Mlos.Core.Isolation;

/// <summary>
/// A model registered with an isolated plugin, as the core knows it: the handle the host's plugin
/// gave it, and the names its specs and outputs carry. SMI says such names are plugin-owned and
/// valid while the model is registered, so the core keeps one copy of each here (its own memory:
/// the host's cannot be trusted to stay put) and frees them when the model is unregistered.
/// </summary>
internal sealed unsafe class RemoteModel(ulong hostHandle, string name) : IDisposable
{
    /// <summary>More distinct names than any model has: past it, the host is making them up.</summary>
    public const int MaxNames = 4096;

    private readonly Dictionary<string, nint> _names = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    public ulong HostHandle { get; } = hostHandle;
    public string Name { get; } = name;

    /// <summary>The core's copy of <paramref name="name"/> as a C string.</summary>
    public byte* Intern(ReadOnlySpan<byte> name)
    {
        var key = System.Text.Encoding.Latin1.GetString(name); // one char per byte: any byte string is its own key
        lock (_lock)
        {
            if (_names.TryGetValue(key, out var known)) return (byte*)known;
            if (_names.Count >= MaxNames)
                throw Wire.WireReader.Malformed($"model '{Name}' has more than {MaxNames} distinct tensor names");
            var copy = (byte*)NativeMemory.Alloc((nuint)name.Length + 1);
            name.CopyTo(new Span<byte>(copy, name.Length));
            copy[name.Length] = 0;
            _names[key] = (nint)copy;
            return copy;
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var p in _names.Values) NativeMemory.Free((void*)p);
            _names.Clear();
        }
    }
}
