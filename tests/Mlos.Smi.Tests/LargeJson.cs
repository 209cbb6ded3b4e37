using System.Text;

namespace Mlos.Smi.Tests;

/// <summary>Large JSON request bodies, built as bytes so that building them costs the tests little.</summary>
internal static class LargeJson
{
    /// <summary>A flat array of <paramref name="count"/> decimals, about 9 bytes each.</summary>
    public static byte[] Floats(int count)
    {
        var json = new byte[count * 9 + 1];
        int at = 0;
        for (int i = 0; i < count; i++)
        {
            json[at++] = i == 0 ? (byte)'[' : (byte)',';
            json[at++] = (byte)('0' + i % 10);
            json[at++] = (byte)'.';
            (i % 999983).TryFormat(json.AsSpan(at, 6), out _, "D6");
            at += 6;
        }
        json[at] = (byte)']';
        return json;
    }

    /// <summary><c>{"name": values}</c>.</summary>
    public static byte[] Named(string name, byte[] values) =>
        [.. Encoding.UTF8.GetBytes($"{{\"{name}\":"), .. values, (byte)'}'];
}
