using System.Runtime.InteropServices;
using System.Text;
using Mlos.Core;
using Mlos.Smi.Abi;

namespace Mlos.Server;

/// <summary>
/// The regions of the Open Inference Protocol's system shared-memory extension: POSIX
/// shared-memory objects a client has registered by name. Each region keeps its object open, and
/// tensors are copied in and out of it with pread and pwrite, never through a mapping: a client
/// can shrink the object (ftruncate) at any time, and a mapped page past the new end would kill
/// the whole server with SIGBUS, where pread and pwrite just come up short. A request that uses a
/// region holds a <see cref="Lease"/>: a region unregistered meanwhile loses its name at once, but
/// its descriptor stays open until the last lease is given back.
/// Off unless the server was started with <c>--allow-shared-memory</c>: a client that registers a
/// region reads and writes it with this server's rights.
/// </summary>
internal sealed unsafe partial class SharedMemoryRegions(bool allowed, long maxRequestBytes = long.MaxValue) : IDisposable
{
    /// <summary>Input bytes one request may take from regions (the REST body limit): they are copied into the request's memory.</summary>
    public long MaxRequestBytes { get; } = maxRequestBytes;

    /// <summary>Regions registered at once: each holds an open descriptor.</summary>
    public const int MaxRegions = 256;

    /// <summary>The longest name or key part glibc's shm_open accepts (NAME_MAX); names are held to it too.</summary>
    private const int MaxNameBytes = 255;

    private readonly object _lock = new();
    private readonly Dictionary<string, OpenRegion> _regions = new(StringComparer.Ordinal);
    private bool _disposed;

    public record RegionStatus(string Name, string Key, ulong Offset, ulong ByteSize);

    public void Register(string name, string key, ulong offset, ulong byteSize)
    {
        RequireAllowed();
        CheckName(name);
        CheckKey(key);
        if (byteSize == 0) throw Invalid("a shared-memory region needs a byte_size above 0");
        lock (_lock)
        {
            RequireOpen();
            if (_regions.ContainsKey(name))
                throw new MlosException(SmiStatus.AlreadyExists, $"a shared-memory region '{name}' is already registered: unregister it first");
            if (_regions.Count >= MaxRegions)
                throw Invalid($"{MaxRegions} shared-memory regions are registered, the most this server keeps: unregister one first");
            // Opened under the lock: a second register of the same name must not open too and then lose.
            _regions.Add(name, OpenRegion.Open(name, key, offset, byteSize));
        }
    }

    /// <summary>Unregisters <paramref name="name"/>, or every region when it is null or empty.</summary>
    public void Unregister(string? name)
    {
        RequireAllowed();
        lock (_lock)
        {
            RequireOpen();
            if (string.IsNullOrEmpty(name))
            {
                foreach (var region in _regions.Values) region.Release();
                _regions.Clear();
                return;
            }
            if (!_regions.Remove(name, out var removed)) throw NotRegistered(name);
            removed.Release();
        }
    }

    /// <summary>The region <paramref name="name"/>, or every region (by name) when it is null or empty.</summary>
    public IReadOnlyList<RegionStatus> Status(string? name)
    {
        RequireAllowed();
        lock (_lock)
        {
            RequireOpen();
            if (string.IsNullOrEmpty(name))
                return _regions.Values.OrderBy(r => r.Name, StringComparer.Ordinal).Select(r => r.Status).ToArray();
            return _regions.TryGetValue(name, out var region) ? [region.Status] : throw NotRegistered(name);
        }
    }

    /// <summary>
    /// <paramref name="byteSize"/> bytes at <paramref name="offset"/> within region
    /// <paramref name="name"/>, held until the lease is disposed.
    /// </summary>
    public Lease Acquire(string name, ulong offset, ulong byteSize)
    {
        RequireAllowed();
        OpenRegion region;
        lock (_lock)
        {
            RequireOpen();
            if (!_regions.TryGetValue(name, out region!)) throw NotRegistered(name);
            ulong end;
            try { end = checked(offset + byteSize); }
            catch (OverflowException) { throw Invalid($"offset {offset} + byte_size {byteSize} overflows: they do not name a range of shared-memory region '{name}'"); }
            if (end > region.ByteSize)
                throw Invalid($"offset {offset} + byte_size {byteSize} is past the end of shared-memory region '{name}' ({region.ByteSize} bytes)");
            // Taken under the lock, while the registry still holds its own reference: the count cannot be 0 here.
            region.AddRef();
        }
        return new Lease(region, offset, byteSize);
    }

    /// <summary>Closes every region no request holds; those held are closed when their last lease is given back.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            foreach (var region in _regions.Values) region.Release();
            _regions.Clear();
        }
    }

    /// <summary>A range of a region, usable until disposed; disposing twice, from any thread, is harmless.</summary>
    public sealed class Lease : IDisposable
    {
        private OpenRegion? _region;
        private readonly ulong _offset;

        internal Lease(OpenRegion region, ulong offset, ulong byteSize)
        {
            _region = region;
            _offset = offset;
            ByteSize = byteSize;
        }

        public ulong ByteSize { get; }

        private OpenRegion Region => Volatile.Read(ref _region) ?? throw new ObjectDisposedException(nameof(Lease));

        /// <summary>The range's <see cref="ByteSize"/> bytes into <paramref name="destination"/>.</summary>
        public void CopyTo(byte* destination) => Region.Read(_offset, destination, ByteSize);

        /// <summary><paramref name="size"/> bytes (at most <see cref="ByteSize"/>) from <paramref name="source"/> into the range's start.</summary>
        public void CopyFrom(byte* source, ulong size)
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThan(size, ByteSize);
            Region.Write(_offset, source, size);
        }

        public void Dispose() => Interlocked.Exchange(ref _region, null)?.Release();
    }

    /// <summary>One region's open object, counted: the registry's reference plus one per lease.</summary>
    internal sealed class OpenRegion
    {
        private readonly int _fd;
        private int _references = 1;

        private OpenRegion(string name, string key, ulong offset, ulong byteSize, int fd)
        {
            Name = name;
            Key = key;
            Offset = offset;
            ByteSize = byteSize;
            _fd = fd;
        }

        public string Name { get; }
        public string Key { get; }
        public ulong Offset { get; }
        public ulong ByteSize { get; }
        public RegionStatus Status => new(Name, Key, Offset, ByteSize);

        public void AddRef() => Interlocked.Increment(ref _references);

        public void Release()
        {
            if (Interlocked.Decrement(ref _references) == 0) _ = close(_fd);
        }

        /// <summary><paramref name="size"/> bytes at <paramref name="at"/> within the region; an object shrunk since registration is the client's mistake.</summary>
        public void Read(ulong at, byte* destination, ulong size)
        {
            ulong done = 0;
            while (done < size)
            {
                nint n = pread(_fd, destination + done, (nuint)Math.Min(size - done, 1UL << 30), checked((long)(Offset + at + done)));
                if (n > 0) { done += (ulong)n; continue; }
                if (n < 0 && Marshal.GetLastPInvokeError() == EINTR) continue;
                throw Invalid(n == 0
                    ? $"shared-memory object '{Key}' ends before region '{Name}' does: it was made smaller after the region was registered"
                    : $"cannot read shared-memory region '{Name}' (pread: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())})");
            }
        }

        public void Write(ulong at, byte* source, ulong size)
        {
            ulong done = 0;
            while (done < size)
            {
                nint n = pwrite(_fd, source + done, (nuint)Math.Min(size - done, 1UL << 30), checked((long)(Offset + at + done)));
                if (n > 0) { done += (ulong)n; continue; }
                if (n < 0 && Marshal.GetLastPInvokeError() == EINTR) continue;
                throw Invalid($"cannot write shared-memory region '{Name}' (pwrite: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())})");
            }
        }

        /// <summary>Opens <paramref name="key"/> and checks the region fits in it as it is now.</summary>
        public static OpenRegion Open(string name, string key, ulong offset, ulong byteSize)
        {
            ulong end;
            try { end = checked(offset + byteSize); }
            catch (OverflowException) { throw Invalid($"offset {offset} + byte_size {byteSize} overflows: they cannot name a range of '{key}'"); }
            if (end > long.MaxValue) throw Invalid($"offset {offset} + byte_size {byteSize} is past any shared-memory object");
            int fd = shm_open(key, O_RDWR, 0);
            if (fd < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                string why = Marshal.GetPInvokeErrorMessage(errno);
                throw Invalid(errno == ENOENT
                    ? $"no shared-memory object '{key}' exists (shm_open: {why})"
                    : $"cannot open shared-memory object '{key}' for reading and writing (shm_open: {why})");
            }
            try
            {
                // The object's size from the end of the file: lseek has one layout everywhere (struct stat does not).
                long size = lseek(fd, 0, SEEK_END);
                if (size < 0)
                    throw Invalid($"cannot read the size of shared-memory object '{key}' (lseek: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())})");
                if (end > (ulong)size)
                    throw Invalid($"offset {offset} + byte_size {byteSize} is past the end of shared-memory object '{key}' ({size} bytes)");
                return new OpenRegion(name, key, offset, byteSize, fd);
            }
            catch
            {
                _ = close(fd);
                throw;
            }
        }
    }

    private void RequireAllowed()
    {
        if (!allowed)
            throw new MlosException(SmiStatus.NotSupported, "system shared memory is off: start mlos_core with --allow-shared-memory");
    }

    private void RequireOpen()
    {
        if (_disposed) throw new MlosException(SmiStatus.Busy, "the server is shutting down: its shared-memory regions are closed");
    }

    private static void CheckName(string name)
    {
        if (string.IsNullOrEmpty(name)) throw Invalid("a shared-memory region needs a name");
        if (name.Contains('\0') || name.Contains('/')) throw Invalid("a shared-memory region's name cannot hold a NUL character or '/'");
        if (Encoding.UTF8.GetByteCount(name) > MaxNameBytes) throw Invalid($"a shared-memory region's name is at most {MaxNameBytes} bytes");
    }

    /// <summary>A POSIX shared-memory name as shm_open takes it: "/" and 1 to 255 bytes without another '/' or NUL.</summary>
    private static void CheckKey(string key)
    {
        if (key.Length < 2 || key[0] != '/' || key.IndexOf('/', 1) >= 0 || key.Contains('\0') || key is "/." or "/..")
            throw Invalid($"shared-memory key '{key}' is not a POSIX shared-memory name: '/' and then a name without '/' or NUL (as shm_open takes it)");
        if (Encoding.UTF8.GetByteCount(key) - 1 > MaxNameBytes)
            throw Invalid($"shared-memory key '{key[..16]}…' is too long: at most {MaxNameBytes} bytes after the '/'");
    }

    private static MlosException Invalid(string message) => new(SmiStatus.InvalidParam, message);

    private static MlosException NotRegistered(string name) =>
        new(SmiStatus.NotFound, $"no shared-memory region '{name}' is registered");

    private const int O_RDWR = 2, ENOENT = 2, EINTR = 4, SEEK_END = 2;

    [LibraryImport("libc.so.6", EntryPoint = "shm_open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int shm_open(string name, int oflag, uint mode);

    [LibraryImport("libc.so.6", EntryPoint = "lseek", SetLastError = true)]
    private static partial long lseek(int fd, long offset, int whence);

    [LibraryImport("libc.so.6", EntryPoint = "pread", SetLastError = true)]
    private static partial nint pread(int fd, void* buffer, nuint count, long offset);

    [LibraryImport("libc.so.6", EntryPoint = "pwrite", SetLastError = true)]
    private static partial nint pwrite(int fd, void* buffer, nuint count, long offset);

    [LibraryImport("libc.so.6", EntryPoint = "close")]
    private static partial int close(int fd);
}
