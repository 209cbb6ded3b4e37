using System.Text;
using System.Text.Json;
using Mlos.Core;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Server;

/// <summary>
/// A v2 inference request read from its JSON header with <see cref="Utf8JsonReader"/>: the inputs
/// go straight into the thread's tensor array (binary ones pointing into the body), and what the
/// answer needs is kept: the request id and which outputs to send as binary.
/// </summary>
internal readonly unsafe struct KServeRequest
{
    public int InputCount { get; init; }
    public string? Id { get; init; }
    /// <summary><c>"parameters": {"binary_data_output": true}</c>: every output as binary.</summary>
    public bool AllBinary { get; init; }
    public byte* Body { get; init; }

    /// <summary>Whether the request asked for output <paramref name="name"/> as binary data.</summary>
    public bool WantsBinary(ReadOnlySpan<byte> name, KServeScratch scratch)
    {
        if (AllBinary) return true;
        foreach (var range in scratch.BinaryOutputNames)
        {
            var (start, length) = range.GetOffsetAndLength(int.MaxValue);
            if (new ReadOnlySpan<byte>(Body + start, length).SequenceEqual(name)) return true;
        }
        return false;
    }

    public static KServeRequest Parse(ReadOnlySpan<byte> body, int headerLength, byte* bodyPointer, KServeScratch scratch)
    {
        var reader = new Utf8JsonReader(body[..headerLength]);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            throw new MlosException(SmiStatus.InvalidParam, "a v2 inference request must be a JSON object");
        int inputs = -1, offset = headerLength;
        string? id = null;
        bool allBinary = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("inputs"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartArray) break;
                inputs = 0;
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (inputs == KServeScratch.MaxTensors)
                        throw new MlosException(SmiStatus.InvalidParam, $"more than {KServeScratch.MaxTensors} inputs");
                    ReadInput(ref reader, body, bodyPointer, ref offset, &scratch.Inputs[inputs++], scratch);
                }
            }
            else if (reader.ValueTextEquals("outputs"u8)) ReadOutputs(ref reader, scratch);
            else if (reader.ValueTextEquals("parameters"u8)) allBinary = ReadFlag(ref reader, "binary_data_output"u8);
            else if (reader.ValueTextEquals("id"u8))
            {
                reader.Read();
                id = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
        if (inputs < 0)
            throw new MlosException(SmiStatus.InvalidParam, "a v2 inference request needs \"inputs\": [{\"name\",\"shape\",\"datatype\",\"data\"}]");
        if (offset != body.Length)
            throw new MlosException(SmiStatus.InvalidParam, $"{body.Length - offset} bytes after the binary inputs are not claimed by any input");
        return new KServeRequest { InputCount = inputs, Id = id, AllBinary = allBinary, Body = bodyPointer };
    }

    private static void ReadInput(ref Utf8JsonReader reader, ReadOnlySpan<byte> body, byte* bodyPointer, ref int offset, SmiTensor* t, KServeScratch scratch)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
            throw new MlosException(SmiStatus.InvalidParam, "every input must be an object {\"name\",\"shape\",\"datatype\",\"data\"}");
        Span<byte> nameBuffer = stackalloc byte[256];
        scoped ReadOnlySpan<byte> name = default;
        var dtype = SmiDtype.Invalid;
        int rank = -1;
        long binarySize = -1;
        JsonDocument? data = null;
        (nint Data, long Count, nuint Bytes)? numbers = null;
        *t = default;
        try
        {
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("name"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.String)
                        name = reader.ValueIsEscaped ? nameBuffer[..reader.CopyString(nameBuffer)] : reader.ValueSpan;
                }
                else if (reader.ValueTextEquals("datatype"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.String) dtype = SmiDtypes.Parse(reader.ValueSpan);
                }
                else if (reader.ValueTextEquals("shape"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.StartArray) throw BadShape(name);
                    rank = 0;
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        if (rank == SmiVersion.MaxDims)
                            throw new MlosException(SmiStatus.InvalidParam, $"input '{Text(name)}' has more than {SmiVersion.MaxDims} dimensions");
                        if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out var d) || d < 0) throw BadShape(name);
                        t->Shape[rank++] = d;
                    }
                }
                else if (reader.ValueTextEquals("parameters"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.StartObject) { reader.Skip(); continue; }
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        bool isSize = reader.ValueTextEquals("binary_data_size"u8);
                        reader.Read();
                        if (!isSize) { reader.Skip(); continue; }
                        if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out binarySize) || binarySize < 0)
                            throw new MlosException(SmiStatus.InvalidParam, $"input '{Text(name)}': binary_data_size must be a non-negative integer");
                    }
                }
                else if (reader.ValueTextEquals("data"u8))
                {
                    reader.Read();
                    if (JsonNumbers.Handles(dtype)) numbers = JsonNumbers.Read(ref reader, dtype, name, scratch);
                    else data = JsonDocument.ParseValue(ref reader);
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
            if (name.IsEmpty) throw new MlosException(SmiStatus.InvalidParam, "every input needs a \"name\"");
            if (dtype == SmiDtype.Invalid)
                throw new MlosException(SmiStatus.InvalidParam, $"input '{Text(name)}' needs a KServe \"datatype\" (FP32, INT64, BYTES...)");
            if (rank < 0) throw new MlosException(SmiStatus.InvalidParam, $"input '{Text(name)}' needs a \"shape\"");
            t->Name = scratch.Name(name);
            t->Dtype = dtype;
            t->NDim = (uint)rank;
            if (numbers is { } n && binarySize < 0)
            {
                long expected = 1;
                foreach (var d in t->Dims) expected *= d;
                if (n.Count != expected)
                    throw new MlosException(SmiStatus.InvalidParam, $"input '{Text(name)}' has {n.Count} values; shape [{string.Join(",", t->Dims.ToArray())}] needs {expected}");
                t->Data = (void*)n.Data;
                t->ByteSize = n.Bytes;
                return;
            }
            Fill(t, name, dtype, binarySize, data, body, bodyPointer, ref offset, scratch);
        }
        finally { data?.Dispose(); }
    }

    private static void Fill(SmiTensor* t, ReadOnlySpan<byte> name, SmiDtype dtype, long binarySize, JsonDocument? data,
        ReadOnlySpan<byte> body, byte* bodyPointer, ref int offset, KServeScratch scratch)
    {
        long expected = 1;
        foreach (var d in t->Dims) expected *= d;
        if (binarySize >= 0)
        {
            if (binarySize > body.Length - offset)
                throw new MlosException(SmiStatus.InvalidParam, $"input '{Text(name)}': binary_data_size {binarySize} exceeds the {body.Length - offset} bytes left");
            int element = SmiDtypes.ElementSize(dtype);
            if (element > 0 && binarySize != expected * element)
                throw new MlosException(SmiStatus.InvalidParam,
                    $"input '{Text(name)}' has {binarySize} bytes; shape [{string.Join(",", t->Dims.ToArray())}] of {SmiDtypes.Name(dtype)} needs {expected * element}");
            t->Data = bodyPointer + offset; // read in place: no copy of the tensor
            t->ByteSize = (nuint)binarySize;
            offset += (int)binarySize;
            return;
        }
        if (data is null) throw new MlosException(SmiStatus.InvalidParam, $"input '{Text(name)}' has no \"data\"");
        byte[] bytes;
        long count;
        try { bytes = MlosConvention.EncodeValues(Text(name), dtype, data.RootElement, out count); }
        catch (SmiException e) { throw new MlosException(e.Status, e.Message); }
        if (count != expected)
            throw new MlosException(SmiStatus.InvalidParam, $"input '{Text(name)}' has {count} values; shape [{string.Join(",", t->Dims.ToArray())}] needs {expected}");
        t->Data = scratch.Data(bytes);
        t->ByteSize = (nuint)bytes.Length;
    }

    private static void ReadOutputs(ref Utf8JsonReader reader, KServeScratch scratch)
    {
        reader.Read();
        if (reader.TokenType != JsonTokenType.StartArray) { reader.Skip(); return; }
        while (reader.Read() && reader.TokenType == JsonTokenType.StartObject)
        {
            Range name = default;
            bool binary = false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("name"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.String && !reader.ValueIsEscaped)
                    {
                        int start = (int)reader.TokenStartIndex + 1; // after the opening quote
                        name = new Range(start, start + reader.ValueSpan.Length);
                    }
                }
                else if (reader.ValueTextEquals("parameters"u8)) binary = ReadFlag(ref reader, "binary_data"u8);
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
            if (binary && !name.Equals(default)) scratch.BinaryOutputNames.Add(name);
        }
    }

    /// <summary>Reads a parameters object and returns whether <paramref name="flag"/> is true in it.</summary>
    private static bool ReadFlag(ref Utf8JsonReader reader, ReadOnlySpan<byte> flag)
    {
        reader.Read();
        if (reader.TokenType != JsonTokenType.StartObject) { reader.Skip(); return false; }
        bool value = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            bool match = reader.ValueTextEquals(flag);
            reader.Read();
            if (match) value = reader.TokenType == JsonTokenType.True;
            else reader.Skip();
        }
        return value;
    }

    private static MlosException BadShape(ReadOnlySpan<byte> name) =>
        new(SmiStatus.InvalidParam, $"input '{Text(name)}' has a bad shape: \"shape\" must be an array of non-negative integers");

    private static string Text(ReadOnlySpan<byte> utf8) => Encoding.UTF8.GetString(utf8);
}
