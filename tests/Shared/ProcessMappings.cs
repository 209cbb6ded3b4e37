using System.Globalization;

namespace Mlos.Tests;

/// <summary>This process's memory mappings as /proc/self/smaps lists them.</summary>
public static unsafe class ProcessMappings
{
    /// <summary>The mapping holding <paramref name="address"/>: its range and VmFlags ("hg" = madvise(MADV_HUGEPAGE)), or null.</summary>
    public static (ulong Start, ulong End, string[] Flags)? Find(void* address)
    {
        ulong a = (ulong)address;
        (ulong, ulong)? range = null;
        foreach (var line in File.ReadLines("/proc/self/smaps"))
        {
            int dash = line.IndexOf('-');
            int space = line.IndexOf(' ');
            if (dash > 0 && space > dash && ulong.TryParse(line.AsSpan(0, dash), NumberStyles.HexNumber, null, out ulong start) &&
                ulong.TryParse(line.AsSpan(dash + 1, space - dash - 1), NumberStyles.HexNumber, null, out ulong end))
            {
                range = a >= start && a < end ? (start, end) : null;
                continue;
            }
            if (range is { } r && line.StartsWith("VmFlags:", StringComparison.Ordinal))
                return (r.Item1, r.Item2, line["VmFlags:".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        }
        return null;
    }
}
