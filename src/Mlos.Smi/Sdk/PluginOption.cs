using System.Text.Json;
using Mlos.Smi.Abi;

namespace Mlos.Smi.Sdk;

/// <summary>
/// One top-level key of a plugin config, with typed readers. Every reader refuses a wrong value
/// the same way, InvalidParam "&lt;Framework&gt; config: &lt;key&gt; must be &lt;what&gt;, not &lt;raw JSON&gt;",
/// so users of different plugins see one kind of message for one kind of mistake. It reads the
/// parsed config in place: use it only inside the <see cref="PluginOptions.Parse"/> callback.
/// </summary>
public readonly struct PluginOption(string framework, JsonProperty property)
{
    /// <summary>The framework named in messages ("ONNX", "Torch").</summary>
    public string Framework { get; } = framework;

    public string Name => property.Name;
    public JsonElement Value => property.Value;

    /// <summary>"cpu", "cuda" (which is "cuda:0") or "cuda:N" with N ≥ 0, in that spelling.</summary>
    public string Device()
    {
        var s = Value.ValueKind == JsonValueKind.String ? Value.GetString()! : "";
        if (s == "cpu") return s;
        if (s == "cuda") return "cuda:0";
        if (s.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(s.AsSpan(5), out var n) && n >= 0) return s;
        throw Invalid("\"cpu\" or \"cuda:N\"");
    }

    public bool Bool() => Value.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw Invalid("true or false"),
    };

    /// <summary>An integer from 0 to int.MaxValue.</summary>
    public int Count(string what = "a non-negative integer") =>
        Value.ValueKind == JsonValueKind.Number && Value.TryGetInt32(out var n) && n >= 0 ? n : throw Invalid(what);

    /// <summary>A <see cref="Count"/> of threads, within the cores (<see cref="CpuThreads.Fit"/>); 0 stays "the framework's default".</summary>
    public int Threads(string what = "a non-negative integer") => CpuThreads.Fit((ulong)Count(what));

    /// <summary>A size in bytes, 0 to 2^64-1.</summary>
    public ulong Bytes(string what = "a byte count") =>
        Value.ValueKind == JsonValueKind.Number && Value.TryGetUInt64(out var b) ? b : throw Invalid(what);

    /// <summary>Any JSON string (a path, a name); <paramref name="what"/> says which in the message.</summary>
    public string Text(string what = "a string") =>
        Value.ValueKind == JsonValueKind.String ? Value.GetString()! : throw Invalid(what);

    /// <summary>One of a fixed set of strings, as its value; the message lists them ("a, b or c").</summary>
    public T OneOf<T>(params ReadOnlySpan<(string Name, T Value)> choices)
    {
        var s = Value.ValueKind == JsonValueKind.String ? Value.GetString() : null;
        foreach (var (name, value) in choices)
            if (name == s) return value;
        var names = new string[choices.Length];
        for (int i = 0; i < names.Length; i++) names[i] = choices[i].Name;
        throw Invalid(names.Length < 2 ? string.Concat(names) : $"{string.Join(", ", names[..^1])} or {names[^1]}");
    }

    /// <summary>The refusal every reader throws, for checks a plugin makes itself.</summary>
    public SmiException Invalid(string what) =>
        new(SmiStatus.InvalidParam, $"{Framework} config: {Name} must be {what}, not {Value.GetRawText()}");
}
