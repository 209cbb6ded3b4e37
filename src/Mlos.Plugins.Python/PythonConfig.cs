using System.Text.Json;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Plugins.Python;

/// <summary>
/// The bridge's plugin config: <c>{"module": "my_python_plugin", "class": "MyPythonPlugin",
/// "path": "dir/with/module", "libpython": "libpython3.11.so.1.0", "finalize_on_cleanup": false}</c>.
/// A plain label (the guide's harness passes "test-config") or NULL means the guide's own names,
/// <c>my_python_plugin.MyPythonPlugin</c>, found on PYTHONPATH, as the guide's C wrapper does.
/// The whole config string is what the Python class's <c>initialize(config)</c> receives.
/// </summary>
internal sealed record PythonConfig(string Module, string Class, string? Path, string[] Libraries, bool FinalizeOnCleanup)
{
    public const string GuideModule = "my_python_plugin";
    public const string GuideClass = "MyPythonPlugin";

    /// <summary>Debian's CPython first; newer ones after. The bridge needs 3.9+ (vectorcall API).</summary>
    private static readonly string[] DefaultLibraries =
        ["libpython3.11.so.1.0", "libpython3.12.so.1.0", "libpython3.13.so.1.0", "libpython3.10.so.1.0", "libpython3.9.so.1.0"];

    public static PythonConfig Parse(string? config)
    {
        using var doc = PluginOptions.Open(config, "plugin");
        if (doc is null) return new(GuideModule, GuideClass, null, DefaultLibraries, false);
        var root = doc.RootElement;
        string? library = Text(root, "libpython");
        string? path = Text(root, "path");
        return new(
            Identifier(Text(root, "module") ?? GuideModule, "module"),
            Identifier(Text(root, "class") ?? GuideClass, "class"),
            path is null ? null : System.IO.Path.GetFullPath(path),
            library is null ? DefaultLibraries : [library],
            root.TryGetProperty("finalize_on_cleanup", out var f) && f.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw new SmiException(SmiStatus.InvalidParam, "plugin config: \"finalize_on_cleanup\" must be true or false"),
            });
    }

    private static string? Text(JsonElement root, string name) =>
        !root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null ? null
        : v.ValueKind == JsonValueKind.String ? v.GetString()
        : throw new SmiException(SmiStatus.InvalidParam, $"plugin config: \"{name}\" must be a string");

    /// <summary>A dotted Python name; anything else would be an import of something unintended.</summary>
    private static string Identifier(string value, string what)
    {
        foreach (var part in value.Split('.'))
        {
            if (part.Length == 0 || !(char.IsLetter(part[0]) || part[0] == '_') || !part.All(c => char.IsLetterOrDigit(c) || c == '_'))
                throw new SmiException(SmiStatus.InvalidParam, $"plugin config: \"{what}\" must be a Python name, not '{value}'");
        }
        if (what == "class" && value.Contains('.'))
            throw new SmiException(SmiStatus.InvalidParam, $"plugin config: \"class\" is a name inside the module, not '{value}'");
        return value;
    }
}
