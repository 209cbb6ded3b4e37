using System.Text.Json;
using System.Text.RegularExpressions;
using Mlos.Core;
using Mlos.Smi.Abi;

namespace Mlos.Server;

/// <summary>
/// Files a plugin or model config points at, checked against an allow-list before the plugin
/// sees the config: otherwise the plugin-folder rule would be bypassed through a plugin that loads
/// code by name, the Python bridge above all (<c>"path"</c> is where it imports from,
/// <c>"libpython"</c> a library it dlopens; Torch's <c>"libtorch_dir"</c> likewise). A string names
/// a file when its key says so (<c>path</c>, <c>libpython</c>, <c>*_dir</c>, <c>*_path</c>,
/// <c>*_file</c>, <c>*_lib</c>) or when it is an absolute or ./-relative path; every such string, at
/// any depth, must resolve (symbolic links followed, no <c>..</c>) inside the allowed folders. A
/// bare shared-library name for <c>libpython</c> is searched by the dynamic linker where the
/// operator's environment says (system folders, LD_LIBRARY_PATH), not where a client can write,
/// and is allowed when it is a CPython one.
/// </summary>
internal static partial class ConfigFiles
{
    public static void Check(string? config, string what, Func<string, bool> allowed, string where)
    {
        if (string.IsNullOrWhiteSpace(config) || config.TrimStart()[0] is not ('{' or '[')) return; // a plain label names nothing
        JsonDocument doc;
        try { doc = JsonDocument.Parse(config); }
        catch (JsonException e) { throw new MlosException(SmiStatus.InvalidParam, $"{what} is not valid JSON: {e.Message}"); }
        try
        {
            using (doc) Walk(doc.RootElement, null, what, allowed, where);
        }
        catch (InvalidOperationException) // a string JSON can carry but no text can hold (a lone surrogate escape)
        {
            throw new MlosException(SmiStatus.InvalidParam, $"{what} holds a string that is not valid text");
        }
    }

    /// <summary>Whether a JSON object config has a string at <paramref name="key"/>.</summary>
    public static bool HasString(string? config, string key)
    {
        if (string.IsNullOrWhiteSpace(config) || config.TrimStart()[0] != '{') return false;
        try
        {
            using var doc = JsonDocument.Parse(config);
            return doc.RootElement.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String;
        }
        catch (JsonException) { return false; }
    }

    private static void Walk(JsonElement e, string? key, string what, Func<string, bool> allowed, string where)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var p in e.EnumerateObject()) Walk(p.Value, p.Name, what, allowed, where);
                break;
            case JsonValueKind.Array:
                foreach (var item in e.EnumerateArray()) Walk(item, key, what, allowed, where);
                break;
            case JsonValueKind.String:
                var value = e.GetString()!;
                bool named = key is not null && NamesFile(key);
                if (!named && !LooksLikePath(value)) return;
                if (key == "libpython" && CPythonLibrary().IsMatch(value)) return;
                // ".." is resolved by the system after links, by us before them: refuse it rather than guess.
                if (value.Length == 0 || value.Contains('\0') || value.Split('/').Contains("..") || !allowed(value))
                    throw new MlosException(SmiStatus.InvalidParam, $"{what}: \"{key}\" names {value}, which is outside {where}");
                break;
        }
    }

    /// <summary>An absolute or explicitly relative path; "application/json" or a URL is not one.</summary>
    private static bool LooksLikePath(string value) =>
        value.StartsWith('/') || value.StartsWith("./", StringComparison.Ordinal) || value.StartsWith("../", StringComparison.Ordinal) || value.StartsWith('~');

    private static bool NamesFile(string key) =>
        key is "path" or "libpython" || key.EndsWith("_dir", StringComparison.Ordinal) || key.EndsWith("_path", StringComparison.Ordinal)
        || key.EndsWith("_file", StringComparison.Ordinal) || key.EndsWith("_lib", StringComparison.Ordinal);

    [GeneratedRegex(@"^libpython3\.\d+\.so(\.\d+)*$")]
    private static partial Regex CPythonLibrary();
}
