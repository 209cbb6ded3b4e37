namespace Mlos.Smi.Abi;

/// <summary>Facts about <see cref="SmiDtype"/> values: KServe names and element sizes.</summary>
public static class SmiDtypes
{
    private static readonly string[] s_names =
        ["INVALID", "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BF16", "BYTES"];

    /// <summary>KServe's name (FP32, INT64, BYTES...); "INVALID" for values outside the enum.</summary>
    public static string Name(SmiDtype t) => (uint)t < (uint)s_names.Length ? s_names[(int)t] : "INVALID";

    /// <summary>The dtype named <paramref name="name"/> (KServe spelling), or <see cref="SmiDtype.Invalid"/>.</summary>
    public static SmiDtype Parse(string? name)
    {
        int i = Array.IndexOf(s_names, name);
        return i > 0 ? (SmiDtype)i : SmiDtype.Invalid;
    }

    /// <summary>The dtype named by UTF-8 <paramref name="name"/> (KServe spelling), or <see cref="SmiDtype.Invalid"/>; allocates nothing.</summary>
    public static SmiDtype Parse(ReadOnlySpan<byte> name)
    {
        for (int i = 1; i < s_names.Length; i++)
        {
            var candidate = s_names[i];
            if (candidate.Length != name.Length) continue;
            int k = 0;
            while (k < name.Length && name[k] == candidate[k]) k++;
            if (k == name.Length) return (SmiDtype)i;
        }
        return SmiDtype.Invalid;
    }

    /// <summary>Bytes per element; 0 for BYTES (variable length) and invalid values.</summary>
    public static int ElementSize(SmiDtype t) => t switch
    {
        SmiDtype.Bool or SmiDtype.UInt8 or SmiDtype.Int8 => 1,
        SmiDtype.UInt16 or SmiDtype.Int16 or SmiDtype.Fp16 or SmiDtype.Bf16 => 2,
        SmiDtype.UInt32 or SmiDtype.Int32 or SmiDtype.Fp32 => 4,
        SmiDtype.UInt64 or SmiDtype.Int64 or SmiDtype.Fp64 => 8,
        _ => 0,
    };
}
