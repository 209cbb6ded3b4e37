using System.IO.Compression;
using System.Text.RegularExpressions;

namespace Mlos.Plugins.TorchSharp;

/// <summary>
/// Input names from a TorchScript archive: the root module's <c>forward</c> as TorchScript wrote
/// it into <c>&lt;archive&gt;/code/__torch__.py</c> (e.g. <c>def forward(self: __torch__.M,
/// input_ids: Tensor, attention_mask: Tensor) -&gt; Tensor:</c>). TorchSharp does not expose a
/// module's schema, and the file is the format's own record of it.
/// </summary>
internal static partial class TorchSignature
{
    [GeneratedRegex(@"def forward\(\s*self[^,)]*(?<params>[^)]*)\)", RegexOptions.Singleline)]
    private static partial Regex ForwardPattern();

    /// <summary>Parameter names of the root forward, or null when the archive does not say.</summary>
    public static string[]? InputNames(string path)
    {
        try
        {
            using var zip = ZipFile.OpenRead(path);
            var root = zip.Entries
                .Where(e => e.FullName.EndsWith("/code/__torch__.py", StringComparison.Ordinal))
                .OrderBy(e => e.FullName.Length)
                .FirstOrDefault();
            if (root is null) return null;
            using var reader = new StreamReader(root.Open());
            var match = ForwardPattern().Match(reader.ReadToEnd());
            if (!match.Success) return null;
            return match.Groups["params"].Value
                .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(p => p.Split(':')[0].Trim())
                .Where(n => n.Length > 0)
                .ToArray();
        }
        catch (InvalidDataException)
        {
            return null; // not a zip: the load itself will say what is wrong
        }
    }
}
