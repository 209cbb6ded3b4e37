using System.Globalization;

namespace Mlos.Server.Triton;

/// <summary>
/// Typed reads of one <see cref="TextMessage"/> for the config mapping: each accessor takes the
/// fields of one name, checks their kind and range (a singular field written twice is an error,
/// as in protobuf), and marks them read. Whatever no accessor asked for is, at the end, one of
/// <see cref="Unread"/>: the fields we keep and report as ignored.
/// </summary>
internal sealed class ConfigReader
{
    private readonly TextMessage _message;
    private readonly string _source, _path;
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    public ConfigReader(TextMessage message, string source, string path = "")
    {
        _message = message;
        _source = source;
        _path = path;
    }

    /// <summary>The dotted path of a field of this message, as the messages name it (<c>input[1].dims</c>).</summary>
    public string PathOf(string name) => _path.Length == 0 ? name : $"{_path}.{name}";

    /// <summary>This message's own path (<c>input[1]</c>; empty for the whole config).</summary>
    public string Path => _path;

    public TextFormatException Error(TextValue at, string what) => new($"{_source}:{at.Where}: {what}");

    /// <summary>An error about the message as a whole (no one value to point at).</summary>
    public TextFormatException Fail(string what) => new($"{_source}: {what}");

    public bool Has(string name) => _message.Fields.Any(f => f.Name == name);

    /// <summary>All values of a repeated field, marked read.</summary>
    public List<TextValue> All(string name)
    {
        _read.Add(name);
        return _message.Fields.Where(f => f.Name == name).Select(f => f.Value).ToList();
    }

    /// <summary>The value of a singular field, or null; written twice is an error.</summary>
    public TextValue? One(string name)
    {
        var values = All(name);
        if (values.Count > 1) throw Error(values[1], $"'{PathOf(name)}' is not a repeated field but is given {values.Count} times");
        return values.Count == 0 ? null : values[0];
    }

    public string? String(string name)
    {
        var v = One(name);
        if (v is null) return null;
        return v.Kind == TextValue.Kinds.String ? v.Text : throw Error(v, $"'{PathOf(name)}' must be a string in quotes, not {Show(v)}");
    }

    public long? Integer(string name, long min, long max) => One(name) is { } v ? Integer(v, PathOf(name), min, max) : null;

    public List<long> Integers(string name, long min, long max) =>
        All(name).Select((v, i) => Integer(v, $"{PathOf(name)}[{i}]", min, max)).ToList();

    public long Integer(TextValue v, string what, long min, long max)
    {
        if (v.Kind != TextValue.Kinds.Number || !TryInteger(v.Text, out var value))
            throw Error(v, $"'{what}' must be a whole number, not {Show(v)}");
        if (value < min || value > max) throw Error(v, $"'{what}' must be from {min} to {max}, not {v.Text}");
        return value;
    }

    public bool? Bool(string name)
    {
        var v = One(name);
        if (v is null) return null;
        return (v.Kind, v.Text) switch
        {
            (TextValue.Kinds.Identifier, "true" or "True" or "t") or (TextValue.Kinds.Number, "1") => true,
            (TextValue.Kinds.Identifier, "false" or "False" or "f") or (TextValue.Kinds.Number, "0") => false,
            _ => throw Error(v, $"'{PathOf(name)}' must be true or false, not {Show(v)}"),
        };
    }

    /// <summary>An enum value by name (numbers are accepted too, as protobuf does), or null.</summary>
    public T? Enum<T>(string name, IReadOnlyDictionary<string, T> names, IReadOnlyDictionary<long, string>? numbers = null) where T : struct
    {
        var v = One(name);
        if (v is null) return null;
        string? key = v.Kind == TextValue.Kinds.Identifier ? v.Text
            : v.Kind == TextValue.Kinds.Number && numbers is not null && TryInteger(v.Text, out var n) && numbers.TryGetValue(n, out var named) ? named
            : null;
        if (key is not null && names.TryGetValue(key, out var value)) return value;
        throw Error(v, $"'{PathOf(name)}' must be one of {string.Join(", ", names.Keys)}, not {Show(v)}");
    }

    /// <summary>A singular message field as a reader of its own, or null.</summary>
    public ConfigReader? Message(string name) => One(name) is { } v ? Nested(v, PathOf(name)) : null;

    /// <summary>Every entry of a repeated message field, each a reader of its own.</summary>
    public List<ConfigReader> Messages(string name) =>
        All(name).Select((v, i) => Nested(v, $"{PathOf(name)}[{i}]")).ToList();

    /// <summary>A protobuf map written as repeated <c>{ key: … value: … }</c> entries: keys must be unique strings.</summary>
    public List<(string Key, TextValue At, ConfigReader Entry)> Map(string name)
    {
        var entries = new List<(string, TextValue, ConfigReader)>();
        var keys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (v, i) in All(name).Select((v, i) => (v, i)))
        {
            var entry = Nested(v, $"{PathOf(name)}[{i}]");
            var key = entry.String("key") ?? throw Error(v, $"'{PathOf(name)}' entries need a \"key\"");
            if (!keys.Add(key)) throw Error(v, $"'{PathOf(name)}' has the key \"{key}\" twice");
            var named = new ConfigReader(entry._message, _source, $"{PathOf(name)}[\"{key}\"]");
            named._read.Add("key");
            entries.Add((key, v, named));
        }
        return entries;
    }

    private ConfigReader Nested(TextValue v, string path) =>
        v.Kind == TextValue.Kinds.Message ? new ConfigReader(v.Message!, _source, path)
        : throw Error(v, $"'{path}' must be a message {{ … }}, not {Show(v)}");

    /// <summary>The fields of this message no accessor read (paths of whole fields, each once).</summary>
    public IEnumerable<string> Unread => _message.Fields.Select(f => f.Name).Distinct().Where(n => !_read.Contains(n)).Select(PathOf);

    private static bool TryInteger(string text, out long value)
    {
        bool negative = text.StartsWith('-');
        var digits = negative ? text[1..] : text;
        bool ok = digits.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? ulong.TryParse(digits[2..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var u) && u <= long.MaxValue
            : ulong.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out u) && u <= (negative ? (ulong)long.MaxValue + 1 : long.MaxValue);
        value = !ok ? 0 : negative ? (long)(0 - u) : (long)u;
        return ok;
    }

    private static string Show(TextValue v) => v.Kind switch
    {
        TextValue.Kinds.String => $"\"{(v.Text.Length > 40 ? v.Text[..40] + "…" : v.Text)}\"",
        TextValue.Kinds.Message => "a message",
        _ => v.Text,
    };
}
