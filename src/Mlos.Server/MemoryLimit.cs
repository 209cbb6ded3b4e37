namespace Mlos.Server;

/// <summary>
/// The memory this process may use: its cgroup's limit (a container's: cgroup v2 memory.max, v1
/// memory.limit_in_bytes), else the machine's. Not the GC's figure: in a container the GC takes
/// three quarters of the limit for its heap, and models live in native memory outside it.
/// </summary>
internal static class MemoryLimit
{
    public static long Bytes()
    {
        foreach (var file in CgroupFiles())
            if (ReadLong(file) is { } limit) return limit;
        return MemTotal() ?? GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
    }

    private static IEnumerable<string> CgroupFiles()
    {
        // cgroup v2: "0::/its/path"; a container with its own cgroup namespace sees "0::/".
        string? own = null;
        try { own = File.ReadLines("/proc/self/cgroup").FirstOrDefault(l => l.StartsWith("0::", StringComparison.Ordinal))?[3..]; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        if (own is { Length: > 1 }) yield return "/sys/fs/cgroup" + own + "/memory.max";
        yield return "/sys/fs/cgroup/memory.max";
        yield return "/sys/fs/cgroup/memory/memory.limit_in_bytes";
    }

    /// <summary>A limit in bytes; null for none ("max", or v1's huge number for none) or no such file.</summary>
    private static long? ReadLong(string file)
    {
        try { return long.TryParse(File.ReadAllText(file).Trim(), out var bytes) && bytes is > 0 and < (1L << 60) ? bytes : null; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    private static long? MemTotal()
    {
        try
        {
            var line = File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal:", StringComparison.Ordinal));
            var kb = line?.Split(' ', StringSplitOptions.RemoveEmptyEntries).ElementAtOrDefault(1);
            return long.TryParse(kb, out var k) ? k * 1024 : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }
}
