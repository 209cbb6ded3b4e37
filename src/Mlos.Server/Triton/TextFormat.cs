using System.Text;

namespace Mlos.Server.Triton;

/// <summary>One value in a text-format message: a scalar token or a nested message.</summary>
internal sealed class TextValue(TextValue.Kinds kind, string text, TextMessage? message, int line, int column)
{
    public enum Kinds { String, Number, Identifier, Message }

    public Kinds Kind { get; } = kind;
    /// <summary>A string's decoded text, a number's or identifier's token as written.</summary>
    public string Text { get; } = text;
    public TextMessage? Message { get; } = message;
    public int Line { get; } = line;
    public int Column { get; } = column;
    public string Where => $"{Line}:{Column}";
}

/// <summary>A field as written: a list (<c>dims: [1, 2]</c>) gives one field per element, in order.</summary>
internal sealed record TextField(string Name, TextValue Value, int Line, int Column);

/// <summary>A message's fields in the order written; what they mean is the reader's business (<see cref="ConfigReader"/>).</summary>
internal sealed class TextMessage(List<TextField> fields)
{
    public IReadOnlyList<TextField> Fields { get; } = fields;
}

/// <summary>
/// A strict reader of protobuf's text format (what Triton's <c>config.pbtxt</c> is written in),
/// without a schema: it turns the text into <see cref="TextMessage"/> trees and checks only the
/// syntax. Accepted: <c>#</c> comments; <c>name: value</c>; <c>name { … }</c>, <c>name: { … }</c>
/// and <c>name &lt; … &gt;</c>; lists <c>name: [a, b]</c> and <c>name [{…}, {…}]</c>; fields
/// separated by whitespace, <c>,</c> or <c>;</c>; strings in single or double quotes with C escapes
/// (<c>\n \t \\ \' \" \xHH \ooo \uXXXX \UXXXXXXXX</c>), adjacent strings joined; numbers (sign,
/// decimal, hex, float, exponent, <c>f</c> suffix); identifiers (enums, true/false, inf, nan).
/// Refused with line and column: anything else, including extension and Any fields
/// (<c>[type.googleapis.com/…]</c>), strings that are not UTF-8, nesting deeper than
/// <see cref="MaxDepth"/> and text longer than <see cref="MaxBytes"/>.
/// </summary>
internal sealed class TextFormat
{
    public const int MaxBytes = 1 << 20;
    public const int MaxDepth = 32;

    private readonly byte[] _text;
    private readonly string _source;
    private int _pos, _line = 1, _lineStart;

    private TextFormat(byte[] text, string source)
    {
        _text = text;
        _source = source;
    }

    /// <summary>The message in <paramref name="text"/>; <paramref name="source"/> names it in errors.</summary>
    public static TextMessage Parse(byte[] text, string source)
    {
        if (text.Length > MaxBytes) throw new TextFormatException($"{source} is {text.Length} bytes, more than the {MaxBytes} a model config may have");
        var reader = new TextFormat(text, source);
        var message = reader.ReadFields(end: 0, depth: 0);
        return message;
    }

    public static TextMessage Parse(string text, string source) => Parse(Encoding.UTF8.GetBytes(text), source);

    private TextFormatException Error(string what, int line, int column) => new($"{_source}:{line}:{column}: {what}");
    private TextFormatException Error(string what) => Error(what, _line, Column);
    private int Column => _pos - _lineStart + 1;

    /// <summary>Fields up to <paramref name="end"/> (<c>}</c>, <c>&gt;</c>, or 0 for the end of the text).</summary>
    private TextMessage ReadFields(byte end, int depth)
    {
        if (depth > MaxDepth) throw Error($"messages nest deeper than {MaxDepth} levels");
        var fields = new List<TextField>();
        while (true)
        {
            SkipSpace();
            if (_pos == _text.Length)
            {
                if (end != 0) throw Error($"the text ends before the message is closed with '{(char)end}'");
                return new TextMessage(fields);
            }
            byte c = _text[_pos];
            if (c == end && end != 0)
            {
                _pos++;
                return new TextMessage(fields);
            }
            if (c == '[') throw Error("extension and Any fields ([type/name]) are not supported in a model config");
            if (!IsIdentStart(c)) throw Error(end == 0 && c is (byte)'}' or (byte)'>' ? $"'{(char)c}' closes no message" : $"expected a field name, found {Describe()}");
            int line = _line, column = Column;
            var name = Identifier();
            SkipSpace();
            bool colon = Peek(':');
            if (colon)
            {
                _pos++;
                SkipSpace();
            }
            if (Peek('['))
            {
                _pos++;
                ReadList(name, colon, fields, depth);
            }
            else if (Peek('{') || Peek('<'))
                fields.Add(new TextField(name, ReadMessage(depth), line, column));
            else if (!colon)
                throw Error($"expected ':' or '{{' after '{name}', found {Describe()}");
            else
                fields.Add(new TextField(name, ReadScalar(), line, column));
            SkipSpace();
            if (Peek(',') || Peek(';')) _pos++;
        }
    }

    /// <summary>The elements after <c>[</c>: all scalars or all messages (a list without a colon must hold messages).</summary>
    private void ReadList(string name, bool colon, List<TextField> fields, int depth)
    {
        SkipSpace();
        if (Peek(']'))
        {
            _pos++;
            return;
        }
        while (true)
        {
            SkipSpace();
            int line = _line, column = Column;
            TextValue value;
            if (Peek('{') || Peek('<')) value = ReadMessage(depth);
            else if (!colon) throw Error($"'{name} [' without ':' must list messages ({{…}}), found {Describe()}");
            else value = ReadScalar();
            fields.Add(new TextField(name, value, line, column));
            SkipSpace();
            if (Peek(','))
            {
                _pos++;
                continue;
            }
            if (Peek(']'))
            {
                _pos++;
                return;
            }
            throw Error($"expected ',' or ']' in the list '{name}', found {Describe()}");
        }
    }

    private TextValue ReadMessage(int depth)
    {
        int line = _line, column = Column;
        byte end = _text[_pos] == '{' ? (byte)'}' : (byte)'>';
        _pos++;
        var message = ReadFields(end, depth + 1);
        return new TextValue(TextValue.Kinds.Message, "", message, line, column);
    }

    private TextValue ReadScalar()
    {
        int line = _line, column = Column;
        if (_pos == _text.Length) throw Error("expected a value, found the end of the text");
        byte c = _text[_pos];
        if (c is (byte)'"' or (byte)'\'')
        {
            var bytes = new List<byte>();
            do
            {
                ReadString(bytes);
                SkipSpace();
            }
            while (_pos < _text.Length && _text[_pos] is (byte)'"' or (byte)'\'');
            string text;
            try { text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes.ToArray()); }
            catch (DecoderFallbackException) { throw Error("the string is not valid UTF-8", line, column); }
            return new TextValue(TextValue.Kinds.String, text, null, line, column);
        }
        if (c == '-' || c == '.' || IsDigit(c))
        {
            int start = _pos;
            if (c == '-')
            {
                _pos++;
                SkipSpace(); // protobuf allows "- 5" and "-inf"
                if (_pos < _text.Length && IsIdentStart(_text[_pos]))
                {
                    var word = Identifier();
                    if (word.ToLowerInvariant() is not ("inf" or "infinity" or "nan"))
                        throw Error($"'-{word}' is not a number", line, column);
                    return new TextValue(TextValue.Kinds.Number, "-" + word, null, line, column);
                }
            }
            int digits = _pos;
            while (_pos < _text.Length && (IsIdentPart(_text[_pos]) || _text[_pos] == '.'
                   || ((_text[_pos] == '-' || _text[_pos] == '+') && _pos > digits && (_text[_pos - 1] | 0x20) == 'e' && !IsHex(_text, digits))))
                _pos++;
            var token = Encoding.ASCII.GetString(_text, digits, _pos - digits);
            if (token.Length == 0 || !IsNumberToken(token)) throw Error($"'{Encoding.UTF8.GetString(_text, start, _pos - start)}' is not a number", line, column);
            return new TextValue(TextValue.Kinds.Number, (c == '-' ? "-" : "") + token, null, line, column);
        }
        if (IsIdentStart(c)) return new TextValue(TextValue.Kinds.Identifier, Identifier(), null, line, column);
        throw Error($"expected a value, found {Describe()}");
    }

    private static bool IsHex(byte[] text, int start) =>
        start + 1 < text.Length && text[start] == '0' && (text[start + 1] | 0x20) == 'x';

    /// <summary>Decimal or hex integer, or a float with optional exponent and f suffix.</summary>
    private static bool IsNumberToken(string t)
    {
        if (t.Length > 2 && t[0] == '0' && (t[1] | 0x20) == 'x') return t[2..].All(Uri.IsHexDigit);
        int i = 0;
        bool digits = false, dot = false;
        while (i < t.Length && (char.IsAsciiDigit(t[i]) || (t[i] == '.' && !dot)))
        {
            if (t[i] == '.') dot = true;
            else digits = true;
            i++;
        }
        if (!digits) return false;
        if (i < t.Length && (t[i] | 0x20) == 'e')
        {
            i++;
            if (i < t.Length && (t[i] == '-' || t[i] == '+')) i++;
            int exp = i;
            while (i < t.Length && char.IsAsciiDigit(t[i])) i++;
            if (i == exp) return false;
        }
        if (i < t.Length && (t[i] | 0x20) == 'f') i++;
        return i == t.Length;
    }

    private void ReadString(List<byte> into)
    {
        int line = _line, column = Column;
        byte quote = _text[_pos++];
        while (true)
        {
            if (_pos == _text.Length) throw Error("the string is not closed", line, column);
            byte c = _text[_pos++];
            if (c == quote) return;
            if (c == '\n') throw Error("the string is not closed before the end of the line", line, column);
            if (c != '\\')
            {
                into.Add(c);
                continue;
            }
            if (_pos == _text.Length) throw Error("the string is not closed", line, column);
            byte e = _text[_pos++];
            switch (e)
            {
                case (byte)'n': into.Add((byte)'\n'); break;
                case (byte)'t': into.Add((byte)'\t'); break;
                case (byte)'r': into.Add((byte)'\r'); break;
                case (byte)'a': into.Add(7); break;
                case (byte)'b': into.Add(8); break;
                case (byte)'f': into.Add(12); break;
                case (byte)'v': into.Add(11); break;
                case (byte)'?': into.Add((byte)'?'); break;
                case (byte)'\\' or (byte)'\'' or (byte)'"': into.Add(e); break;
                case (byte)'x' or (byte)'X': into.Add((byte)Digits(16, 1, 2)); break;
                case >= (byte)'0' and <= (byte)'7':
                    _pos--;
                    int octal = Digits(8, 1, 3);
                    if (octal > 255) throw Error("an octal escape must be at most \\377");
                    into.Add((byte)octal);
                    break;
                case (byte)'u': Utf8(into, Digits(16, 4, 4)); break;
                case (byte)'U': Utf8(into, Digits(16, 8, 8)); break;
                default: throw Error($"unknown escape '\\{(char)e}' in a string");
            }
        }
    }

    private int Digits(int radix, int min, int max)
    {
        long value = 0; // 8 hex digits overflow an int
        int n = 0;
        while (n < max && _pos < _text.Length)
        {
            int d = HexValue(_text[_pos]);
            if (d < 0 || d >= radix) break;
            value = value * radix + d;
            _pos++;
            n++;
        }
        if (n < min) throw Error($"an escape needs {(min == max ? min.ToString() : $"{min} to {max}")} {(radix == 16 ? "hex" : "octal")} digits");
        return value > 0x10FFFF ? int.MaxValue : (int)value; // beyond Unicode either way: refused by the caller
    }

    private void Utf8(List<byte> into, int codePoint)
    {
        if (codePoint > 0x10FFFF || (codePoint >= 0xD800 && codePoint <= 0xDFFF)) throw Error($"\\u escape U+{codePoint:X} is not a Unicode scalar value");
        Span<byte> buffer = stackalloc byte[4];
        int n = new Rune(codePoint).EncodeToUtf8(buffer);
        for (int i = 0; i < n; i++) into.Add(buffer[i]);
    }

    private static int HexValue(byte c) => c switch
    {
        >= (byte)'0' and <= (byte)'9' => c - '0',
        >= (byte)'a' and <= (byte)'f' => c - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => c - 'A' + 10,
        _ => -1,
    };

    private string Identifier()
    {
        int start = _pos;
        while (_pos < _text.Length && IsIdentPart(_text[_pos])) _pos++;
        return Encoding.ASCII.GetString(_text, start, _pos - start);
    }

    private void SkipSpace()
    {
        while (_pos < _text.Length)
        {
            byte c = _text[_pos];
            if (c == '\n')
            {
                _pos++;
                _line++;
                _lineStart = _pos;
            }
            else if (c is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\f' or (byte)'\v') _pos++;
            else if (c == '#')
                while (_pos < _text.Length && _text[_pos] != '\n') _pos++;
            else return;
        }
    }

    private bool Peek(char c) => _pos < _text.Length && _text[_pos] == c;

    private string Describe()
    {
        if (_pos >= _text.Length) return "the end of the text";
        byte c = _text[_pos];
        return c is >= 0x21 and < 0x7F ? $"'{(char)c}'" : $"byte 0x{c:X2}";
    }

    private static bool IsDigit(byte c) => c is >= (byte)'0' and <= (byte)'9';
    private static bool IsIdentStart(byte c) => c is >= (byte)'a' and <= (byte)'z' or >= (byte)'A' and <= (byte)'Z' or (byte)'_';
    private static bool IsIdentPart(byte c) => IsIdentStart(c) || IsDigit(c);
}

/// <summary>A model config that is not valid text format, or not a valid config: the message says where and why.</summary>
internal sealed class TextFormatException(string message) : Exception(message);
