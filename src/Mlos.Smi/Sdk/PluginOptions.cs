using System.Text.Json;
using Mlos.Smi.Abi;

namespace Mlos.Smi.Sdk;

/// <summary>
/// The one reading of a plugin's or a model's config string, so every plugin treats it alike:
/// text that is not a JSON object (NULL, blank, or a label such as the guide harness's
/// "test-config") means defaults; a JSON object is walked key by key over a basis (the plugin's
/// options under a model's); JSON that does not parse is InvalidParam.
/// </summary>
public static class PluginOptions
{
    /// <summary>
    /// The config as a JSON document, or null for a label (defaults); the caller disposes it.
    /// Invalid JSON throws InvalidParam "<paramref name="framework"/> config is not valid JSON: …".
    /// </summary>
    public static JsonDocument? Open(string? config, string framework)
    {
        if (string.IsNullOrWhiteSpace(config) || config.TrimStart()[0] != '{') return null;
        try { return JsonDocument.Parse(config); }
        catch (JsonException e) { throw new SmiException(SmiStatus.InvalidParam, $"{framework} config is not valid JSON: {e.Message}"); }
    }

    /// <summary>
    /// <paramref name="basis"/> with every top-level key of <paramref name="config"/> applied in
    /// order by <paramref name="apply"/>; a label returns <paramref name="basis"/> itself. Keys
    /// <paramref name="apply"/> does not know should return the value unchanged: model configs
    /// carry model-level keys (inputs, outputs) and free-form metadata next to the options.
    /// </summary>
    public static T Parse<T>(string? config, string framework, T basis, Func<T, PluginOption, T> apply)
    {
        using var doc = Open(config, framework);
        if (doc is null) return basis;
        var c = basis;
        foreach (var p in doc.RootElement.EnumerateObject()) c = apply(c, new PluginOption(framework, p));
        return c;
    }
}
