using System.IO.MemoryMappedFiles;
using System.Text;

namespace Mlos.Benchmarks.Server;

/// <summary>
/// A POSIX shared-memory object this process creates (on Linux the object "/NAME" is the file
/// /dev/shm/NAME), maps, and registers with the server as a system shared-memory region of the
/// same name; disposing unregisters it, unmaps it and removes the object.
/// </summary>
internal sealed class ShmRegion : IAsyncDisposable
{
    private readonly HttpClient _http;
    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private readonly nint _pointer;

    private unsafe ShmRegion(HttpClient http, string name, int bytes)
    {
        _http = http;
        Name = name;
        Bytes = bytes;
        using (var f = new FileStream(Path, FileMode.CreateNew, FileAccess.ReadWrite)) f.SetLength(bytes);
        _file = MemoryMappedFile.CreateFromFile(Path, FileMode.Open, null, bytes, MemoryMappedFileAccess.ReadWrite);
        _view = _file.CreateViewAccessor(0, bytes);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _pointer = (nint)(p + _view.PointerOffset);
    }

    /// <summary>The region's name on the server, and the object's name without its slash.</summary>
    public string Name { get; }
    public int Bytes { get; }
    public string Path => $"/dev/shm/{Name}";

    /// <summary>The mapped bytes: what this process writes here the server reads, and the other way.</summary>
    public unsafe Span<byte> Span => new((void*)_pointer, Bytes);

    /// <summary>Creates the object (<paramref name="bytes"/> of zeros) and registers all of it.</summary>
    public static async Task<ShmRegion> CreateAsync(HttpClient http, string name, int bytes)
    {
        var region = new ShmRegion(http, name, bytes);
        try
        {
            using var r = await http.PostAsync($"/v2/systemsharedmemory/region/{name}/register",
                new StringContent($$"""{"key":"/{{name}}","offset":0,"byte_size":{{bytes}}}""", Encoding.UTF8, "application/json"));
            if (!r.IsSuccessStatusCode) throw new InvalidOperationException($"registering region {name}: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
        }
        catch
        {
            region.Unmap();
            throw;
        }
        return region;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            (await _http.PostAsync($"/v2/systemsharedmemory/region/{Name}/unregister", null)).Dispose();
        }
        catch (HttpRequestException) { } // the server is gone: nothing holds the region
        Unmap();
    }

    private void Unmap()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file.Dispose();
        File.Delete(Path);
    }
}
