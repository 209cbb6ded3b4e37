using System.Globalization;
using Mlos.Tests;

namespace Mlos.Server.Tests;

/// <summary>One tensor of an ONNX fixture's .ref file: "in|out name DTYPE rank dims… values…".</summary>
public sealed record RefTensor(string Role, string Name, string Dtype, long[] Shape, string[] Values)
{
    /// <summary>The ONNX fixtures the door-to-door tests serve, as (model id, .ref file), for [MemberData].</summary>
    public static TheoryData<string, string> Fixtures => new()
    {
        { "dtypes", "dtypes.ref" }, { "multi", "multi_io.ref" }, { "mlp", "mlp.ref" }, { "strings", "strings.ref" },
    };

    /// <summary>The tensors of a .ref file made by tests/models/make_onnx_fixtures.py.</summary>
    public static RefTensor[] Read(string file) => File.ReadAllLines(Path.Combine(BuildTree.Models("onnx"), file))
        .Where(l => !l.StartsWith('#') && l.Length > 0).Select(l =>
        {
            var p = l.Split(' ');
            int rank = int.Parse(p[3]);
            return new RefTensor(p[0], p[1], p[2], p[4..(4 + rank)].Select(long.Parse).ToArray(), p[(4 + rank)..]);
        }).ToArray();

    /// <summary>The values as the bytes the tensor holds (BYTES values are hex, each sent as a 4-byte length and its bytes).</summary>
    public byte[] Bytes()
    {
        var bytes = new List<byte>();
        var inv = CultureInfo.InvariantCulture;
        foreach (var v in Values)
        {
            bytes.AddRange(Dtype switch
            {
                "BOOL" or "UINT8" => [byte.Parse(v, inv)],
                "INT8" => [(byte)sbyte.Parse(v, inv)],
                "INT16" => BitConverter.GetBytes(short.Parse(v, inv)),
                "UINT16" or "FP16" => BitConverter.GetBytes(ushort.Parse(v, inv)),
                "INT32" => BitConverter.GetBytes(int.Parse(v, inv)),
                "UINT32" => BitConverter.GetBytes(uint.Parse(v, inv)),
                "INT64" => BitConverter.GetBytes(long.Parse(v, inv)),
                "UINT64" => BitConverter.GetBytes(ulong.Parse(v, inv)),
                "FP32" => BitConverter.GetBytes(float.Parse(v, inv)),
                "FP64" => BitConverter.GetBytes(double.Parse(v, inv)),
                "BYTES" => [.. BitConverter.GetBytes(Convert.FromHexString(v).Length), .. Convert.FromHexString(v)],
                _ => throw new ArgumentException(Dtype),
            });
        }
        return bytes.ToArray();
    }
}
