using System.Buffers.Binary;

namespace Mlos.Smi.Abi;

/// <summary>
/// What a tensor's shape, dtype and bytes must agree on, checked without trusting any of them:
/// element counts are multiplied with overflow checks, and a BYTES tensor's layout (per element a
/// little-endian uint32 length, then the bytes) is walked, because BYTES has no fixed element size
/// and a shape of 10^8 elements over 4 bytes of data would otherwise reach a plugin that allocates
/// an element per entry before it looks at the data.
/// </summary>
public static unsafe class SmiTensorRules
{
    /// <summary>The product of <paramref name="dims"/>; false when a dim is negative or the product overflows.</summary>
    public static bool TryElementCount(ReadOnlySpan<long> dims, out long count)
    {
        count = 1;
        foreach (var d in dims)
        {
            if (d < 0) return false;
            if (d != 0 && count > long.MaxValue / d)
            {
                count = 0;
                return false;
            }
            count *= d;
        }
        return true;
    }

    /// <summary>Why <paramref name="t"/> cannot be what it says, in words for a client; null when it can.</summary>
    public static string? Problem(in SmiTensor t)
    {
        if (t.NDim > SmiVersion.MaxDims) return $"has {t.NDim} dimensions; at most {SmiVersion.MaxDims} are allowed";
        var dims = t.Dims;
        if (!TryElementCount(dims, out long count))
            return dims.IndexOfAnyInRange(long.MinValue, -1) >= 0
                ? $"has a negative dimension in shape [{Format(dims)}]"
                : $"has shape [{Format(dims)}], whose element count does not fit in 64 bits";
        if (t.Data == null && t.ByteSize > 0) return "has bytes but no data pointer";
        if (t.Dtype == SmiDtype.Bytes) return BytesProblem(t, dims, count);
        int element = SmiDtypes.ElementSize(t.Dtype);
        if (element == 0) return $"has no valid dtype ({(int)t.Dtype})";
        if (count > long.MaxValue / element || (ulong)(count * element) != (ulong)t.ByteSize)
            return $"has {t.ByteSize} bytes; shape [{Format(dims)}] of {SmiDtypes.Name(t.Dtype)} needs {(count > long.MaxValue / element ? "more than 2^63" : (count * element).ToString())}";
        return null;
    }

    private static string? BytesProblem(in SmiTensor t, ReadOnlySpan<long> dims, long count)
    {
        // Every element carries a 4-byte length prefix, so the element count is bounded by the data.
        if (count > (long)(t.ByteSize / 4))
            return $"has {t.ByteSize} bytes; shape [{Format(dims)}] of BYTES needs at least {(count > long.MaxValue / 4 ? "more than 2^63" : (count * 4).ToString())} (4 length bytes per element)";
        if (t.MemoryType == SmiMemoryType.Gpu) return null; // device memory: the plugin that reads it owns the walk
        byte* data = (byte*)t.Data;
        ulong size = t.ByteSize, offset = 0;
        for (long i = 0; i < count; i++)
        {
            if (size - offset < 4)
                return $"is BYTES with {count} elements in shape [{Format(dims)}] but its data ends after {i}";
            uint length = BinaryPrimitives.ReadUInt32LittleEndian(new ReadOnlySpan<byte>(data + offset, 4));
            offset += 4;
            if (length > size - offset) return $"is BYTES whose element {i} claims {length} bytes past the end of its data";
            offset += length;
        }
        return offset == size ? null : $"is BYTES with {size - offset} bytes after its {count} elements";
    }

    private static string Format(ReadOnlySpan<long> dims) => string.Join(",", dims.ToArray());
}
