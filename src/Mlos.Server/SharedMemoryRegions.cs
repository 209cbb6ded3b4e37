using System.Runtime.InteropServices;
using System.Text;
using Mlos.Core;
using Mlos.Smi.Abi;

namespace Mlos.Server;

/// <summary>
/// The regions of the Open Inference Protocol's system shared-memory extension: POSIX
/// shared-memory objects a client has registered by name, mapped into this process so tensors can
/// be read from and written to them. A request that uses a region holds a <see cref="Lease"/>: a
/// region unregistered meanwhile loses its name at once, but its mapping stays until the last
/// lease is given back, so no request ever touches memory that has been unmapped under it.
/// Off unless the server was started with <c>--allow-shared-memory</c>: a client that registers a
/// region reads and writes it with this server's rights.
/// </summary>
internal sealed unsafe partial class SharedMemoryRegions(bool allowed) : IDisposable
{
    /// <summary>Regions registered at once: each holds a mapping and a file's worth of kernel state.</summary>
    public const int MaxRegions = 256;

    /// <summary>The longest name or key part glibc's shm_open accepts (NAME_MAX); names are held to it too.</summary>
    private const int MaxNameBytes = 255;

    private readonly object _lock = new();
    private readonly Dictionary<string, Mapping> _regions = new(StringComparer.Ordinal);
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
            // Mapped under the lock: a second register of the same name must not map too and then lose.
            _regions.Add(name, Mapping.Open(name, key, offset, byteSize));
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
        Mapping region;
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
        return new Lease(region, region.Start + offset, byteSize);
    }

    /// <summary>Unmaps every region no request holds; those held are unmapped when their last lease is given back.</summary>
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

    /// <summary>A range of a mapped region, valid until disposed; disposing twice, from any thread, is harmless.</summary>
    public sealed class Lease : IDisposable
    {
        private Mapping? _region;
        private readonly byte* _pointer;

        internal Lease(Mapping region, byte* pointer, ulong byteSize)
        {
            _region = region;
            _pointer = pointer;
            ByteSize = byteSize;
        }

        /// <summary>The first byte of the range; a disposed lease has no memory to point to.</summary>
        public byte* Pointer => Volatile.Read(ref _region) is not null ? _pointer : throw new ObjectDisposedException(nameof(Lease));

        public ulong ByteSize { get; }

        public void Dispose() => Interlocked.Exchange(ref _region, null)?.Release();
    }

    /// <summary>One mmap of one region, counted: the registry's reference plus one per lease.</summary>
    internal sealed class Mapping
    {
        private readonly byte* _base;
        private readonly nuint _length;
        private int _references = 1;

        private Mapping(string name, string key, ulong offset, ulong byteSize, byte* mapped, nuint length, nuint lead)
        {
            Name = name;
            Key = key;
            Offset = offset;
            ByteSize = byteSize;
            _base = mapped;
            _length = length;
            Start = mapped + lead;
        }

        public string Name { get; }
        public string Key { get; }
        public ulong Offset { get; }
        public ulong ByteSize { get; }
        /// <summary>The region's first byte (its offset within the object), inside the page-aligned mapping.</summary>
        public byte* Start { get; }
        public RegionStatus Status => new(Name, Key, Offset, ByteSize);

        public void AddRef() => Interlocked.Increment(ref _references);

        public void Release()
        {
            if (Interlocked.Decrement(ref _references) == 0) _ = munmap(_base, _length);
        }

        /// <summary>Opens <paramref name="key"/>, checks the region fits in it and maps the pages that cover it.</summary>
        public static Mapping Open(string name, string key, ulong offset, ulong byteSize)
        {
            ulong end;
            try { end = checked(offset + byteSize); }
            catch (OverflowException) { throw Invalid($"offset {offset} + byte_size {byteSize} overflows: they cannot name a range of '{key}'"); }
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
                long size = SizeOf(fd, key);
                if (end > (ulong)size)
                    throw Invalid($"offset {offset} + byte_size {byteSize} is past the end of shared-memory object '{key}' ({size} bytes)");
                // mmap takes a page-aligned file offset: map from the page that holds the region's first byte.
                ulong page = (ulong)Environment.SystemPageSize;
                ulong aligned = offset - offset % page;
                nuint lead = (nuint)(offset - aligned);
                nuint length = checked((nuint)(end - aligned));
                byte* mapped = mmap(null, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, checked((long)aligned));
                if (mapped == MapFailed)
                    throw Invalid($"cannot map shared-memory object '{key}' (mmap: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())})");
                return new Mapping(name, key, offset, byteSize, mapped, length, lead);
            }
            finally { _ = close(fd); } // the mapping keeps the object; the descriptor is not needed past mmap
        }

        /// <summary>
        /// st_size from fstat. struct stat differs between architectures, but st_size sits at byte 48
        /// on x86-64 and in the generic layout (arm64, riscv64) alike; the buffer is larger than either struct.
        /// </summary>
        private static long SizeOf(int fd, string key)
        {
            byte* stat = stackalloc byte[256];
            if (fstat(fd, stat) != 0)
                throw Invalid($"cannot read the size of shared-memory object '{key}' (fstat: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())})");
            return *(long*)(stat + StSizeOffset);
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

    private const int O_RDWR = 2, PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1, ENOENT = 2, StSizeOffset = 48;
    private static readonly byte* MapFailed = (byte*)-1;

    [LibraryImport("libc.so.6", EntryPoint = "shm_open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int shm_open(string name, int oflag, uint mode);

    [LibraryImport("libc.so.6", EntryPoint = "fstat", SetLastError = true)]
    private static partial int fstat(int fd, byte* stat);

    [LibraryImport("libc.so.6", EntryPoint = "mmap", SetLastError = true)]
    private static partial byte* mmap(void* address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport("libc.so.6", EntryPoint = "munmap")]
    private static partial int munmap(void* address, nuint length);

    [LibraryImport("libc.so.6", EntryPoint = "close")]
    private static partial int close(int fd);
}
