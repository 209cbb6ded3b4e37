using System.Text;
using System.Text.Json;
using Mlos.Core;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Server;

/// <summary>
/// A v2 inference request read from its JSON header with <see cref="Utf8JsonReader"/>: the inputs
/// go straight into the request's scratch (binary ones pointing into the body, JSON ones decoded
/// into its value buffer), and what the answer needs is kept: the request id, which outputs to
/// send and which of them as binary. The header is read strictly: a member of the wrong type is
/// refused, never skipped along with what follows it.
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
        var requested = scratch.Requested(name);
        if (requested?.Region is not null) return false; // written into its shared-memory region instead
        return AllBinary || requested?.Binary == true;
    }

    public static KServeRequest Parse(ReadOnlySpan<byte> body, int headerLength, byte* bodyPointer, KServeScratch scratch, SharedMemoryRegions regions)
    {
        try
        {
            var request = ParseHeader(body, headerLength, bodyPointer, scratch, regions);
            scratch.PointAtValues(request.InputCount);
            return request;
        }
        catch (InvalidOperationException e) // the reader's verdict on a string it could not unescape or transcode
        {
            throw new MlosException(SmiStatus.InvalidParam, $"the request holds text that is not valid UTF-8 or has an unpaired surrogate escape ({e.Message})");
        }
    }

    private static KServeRequest ParseHeader(ReadOnlySpan<byte> body, int headerLength, byte* bodyPointer, KServeScratch scratch, SharedMemoryRegions regions)
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
                // A second list would refill the slots of the first, which point into its data.
                if (inputs >= 0) throw new MlosException(SmiStatus.InvalidParam, "\"inputs\" is given twice");
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartArray)
                    throw new MlosException(SmiStatus.InvalidParam, "\"inputs\" must be an array of input objects");
                inputs = 0;
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (inputs == KServeScratch.MaxTensors)
                        throw new MlosException(SmiStatus.InvalidParam, $"more than {KServeScratch.MaxTensors} inputs");
                    ReadInput(ref reader, body, bodyPointer, ref offset, inputs++, scratch, regions);
                }
            }
            else if (reader.ValueTextEquals("outputs"u8)) ReadOutputs(ref reader, scratch, regions);
            else if (reader.ValueTextEquals("parameters"u8)) allBinary = ReadFlag(ref reader, "binary_data_output"u8, "the request's \"parameters\"");
            else if (reader.ValueTextEquals("id"u8))
            {
                reader.Read();
                id = reader.TokenType == JsonTokenType.String ? reader.GetString()
                    : throw new MlosException(SmiStatus.InvalidParam, "\"id\" must be a string");
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
        if (inputs < 0)
            throw new MlosException(SmiStatus.InvalidParam, "a v2 inference request needs \"inputs\": [{\"name\",\"shape\",\"datatype\",\"data\"}]");
        // The header is one object and nothing after it (in the header's length): the reader throws
        // on trailing bytes, and an object member it stopped at means the object was malformed.
        if (reader.TokenType != JsonTokenType.EndObject || reader.CurrentDepth != 0)
            throw new MlosException(SmiStatus.InvalidParam, "a v2 inference request must be one JSON object of named members");
        if (reader.Read())
            throw new MlosException(SmiStatus.InvalidParam, "the request header has bytes after its JSON object");
        if (offset != body.Length)
            throw new MlosException(SmiStatus.InvalidParam, $"{body.Length - offset} bytes after the binary inputs are not claimed by any input");
        return new KServeRequest { InputCount = inputs, Id = id, AllBinary = allBinary, Body = bodyPointer };
    }

    /// <summary>Longest tensor name accepted, in UTF-8 bytes after unescaping (more than any model uses).</summary>
    private const int MaxNameBytes = KServeScratch.MaxNameBytes;

    private static void ReadInput(ref Utf8JsonReader reader, ReadOnlySpan<byte> body, byte* bodyPointer, ref int offset, int index, KServeScratch scratch, SharedMemoryRegions regions)
    {
        SmiTensor* t = &scratch.Inputs[index];
        if (reader.TokenType != JsonTokenType.StartObject)
            throw new MlosException(SmiStatus.InvalidParam, "every input must be an object {\"name\",\"shape\",\"datatype\",\"data\"}");
        // An escape is at most 6 bytes for 1: a name longer than this escaped cannot fit unescaped.
        Span<byte> nameBuffer = stackalloc byte[6 * MaxNameBytes];
        scoped ReadOnlySpan<byte> name = default;
        var dtype = SmiDtype.Invalid;
        int rank = -1;
        long binarySize = -1;
        bool hasData = false;
        var shared = new SharedMemoryParameters();
        Utf8JsonReader deferred = default; // "data" met before "datatype": read once the dtype is known
        bool isDeferred = false;
        JsonTensorExtent values = default;
        nuint valuesAt = 0;
        *t = default;
        scratch.ForgetValues(index);
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("name"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.String) name = Name(in reader, nameBuffer);
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
                    if (shared.TryRead(ref reader)) continue;
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
                hasData = true;
                if (dtype == SmiDtype.Invalid)
                {
                    deferred = reader;
                    isDeferred = true;
                    reader.Skip();
                }
                else (values, valuesAt) = ReadValues(ref reader, dtype, name, scratch);
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
        if (shared.Reference($"input '{Text(name)}'") is { } region)
        {
            if (hasData || binarySize >= 0)
                throw new MlosException(SmiStatus.InvalidParam, $"input '{Text(name)}' gives shared_memory_region and {(hasData ? "\"data\"" : "binary_data_size")}: its bytes come from one place");
            SharedMemoryTensors.PlaceInput(regions, region, Text(name), index, scratch);
            return;
        }
        if (binarySize >= 0)
        {
            // The core checks the bytes against the shape and dtype (BYTES included) for every front door.
            if (binarySize > body.Length - offset)
                throw new MlosException(SmiStatus.InvalidParam, $"input '{Text(name)}': binary_data_size {binarySize} exceeds the {body.Length - offset} bytes left");
            t->Data = bodyPointer + offset; // read in place: no copy of the tensor
            t->ByteSize = (nuint)binarySize;
            offset += (int)binarySize;
            return;
        }
        if (!hasData) throw new MlosException(SmiStatus.InvalidParam, $"input '{Text(name)}' has no \"data\"");
        if (isDeferred) (values, valuesAt) = ReadValues(ref deferred, dtype, name, scratch);
        if (!SmiTensorRules.TryElementCount(t->Dims, out long expected) || values.Count != expected)
            throw new MlosException(SmiStatus.InvalidParam,
                $"input '{Text(name)}' has {values.Count} values; shape [{string.Join(",", t->Dims.ToArray())}] needs {(expected > 0 || SmiTensorRules.TryElementCount(t->Dims, out _) ? expected.ToString() : "more than 2^63")}");
        scratch.PlaceValues(index, valuesAt, values.ByteSize);
    }

    /// <summary>Decodes a JSON <c>"data"</c> value into the request's value buffer; where it starts there.</summary>
    private static (JsonTensorExtent, nuint) ReadValues(ref Utf8JsonReader reader, SmiDtype dtype, scoped ReadOnlySpan<byte> name, KServeScratch scratch)
    {
        nuint at = scratch.Values.Length;
        try { return (JsonTensorValues.Read(ref reader, dtype, name, scratch.Values), at); }
        catch (SmiException e) { throw new MlosException(e.Status, e.Message); }
    }

    /// <summary>A tensor name, unescaped into <paramref name="buffer"/> when it must be (the scratch checks it when it keeps it).</summary>
    private static ReadOnlySpan<byte> Name(in Utf8JsonReader reader, Span<byte> buffer)
    {
        var raw = reader.ValueSpan;
        if (raw.Length > buffer.Length) throw NameTooLong();
        return reader.ValueIsEscaped ? buffer[..reader.CopyString(buffer)] : raw;
    }

    private static MlosException NameTooLong() => new(SmiStatus.InvalidParam, $"a tensor name is longer than {MaxNameBytes} bytes");

    /// <summary>
    /// <c>"outputs": [{"name": "…", "parameters": {"binary_data": bool}}]</c>: the outputs to send
    /// (a name that is escaped is unescaped into the scratch's name arena, as input names are).
    /// </summary>
    private static void ReadOutputs(ref Utf8JsonReader reader, KServeScratch scratch, SharedMemoryRegions regions)
    {
        const string shape = "\"outputs\" must be an array of objects {\"name\", \"parameters\"?}";
        reader.Read();
        if (reader.TokenType != JsonTokenType.StartArray) throw new MlosException(SmiStatus.InvalidParam, shape);
        Span<byte> nameBuffer = stackalloc byte[6 * MaxNameBytes];
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.StartObject) throw new MlosException(SmiStatus.InvalidParam, shape);
            scoped ReadOnlySpan<byte> name = default;
            bool named = false;
            bool binary = false;
            var shared = new SharedMemoryParameters();
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("name"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.String) throw new MlosException(SmiStatus.InvalidParam, "a requested output's \"name\" must be a string");
                    name = Name(in reader, nameBuffer);
                    named = true;
                }
                else if (reader.ValueTextEquals("parameters"u8)) binary = ReadFlag(ref reader, "binary_data"u8, "a requested output's \"parameters\"", ref shared);
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
            if (!named) throw new MlosException(SmiStatus.InvalidParam, "every requested output needs a \"name\"");
            if (shared.Reference($"output '{Text(name)}'") is { } region)
                scratch.RequestOutput(name, binary, SharedMemoryTensors.ForOutput(regions, region, name, scratch), region.Region);
            else scratch.RequestOutput(name, binary);
        }
    }

    /// <summary>Reads a parameters object and returns whether <paramref name="flag"/> is true in it.</summary>
    private static bool ReadFlag(ref Utf8JsonReader reader, ReadOnlySpan<byte> flag, string what)
    {
        var none = new SharedMemoryParameters();
        return ReadFlag(ref reader, flag, what, ref none);
    }

    /// <summary>The same, keeping the shared-memory members it meets in <paramref name="shared"/>.</summary>
    private static bool ReadFlag(ref Utf8JsonReader reader, ReadOnlySpan<byte> flag, string what, ref SharedMemoryParameters shared)
    {
        reader.Read();
        if (reader.TokenType != JsonTokenType.StartObject) throw new MlosException(SmiStatus.InvalidParam, $"{what} must be an object");
        bool value = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (shared.TryRead(ref reader)) continue;
            bool match = reader.ValueTextEquals(flag);
            reader.Read();
            if (!match) reader.Skip();
            else if (reader.TokenType is JsonTokenType.True or JsonTokenType.False) value = reader.TokenType == JsonTokenType.True;
            else throw new MlosException(SmiStatus.InvalidParam, $"{what}: {Encoding.UTF8.GetString(flag)} must be true or false");
        }
        return value;
    }

    /// <summary>A tensor's shared-memory members of its JSON parameters, as they are read.</summary>
    private struct SharedMemoryParameters
    {
        private string? _region;
        private ulong? _size;
        private ulong? _offset;

        /// <summary>Reads the member the reader is at if it is a shared-memory one; false (nothing read) for any other.</summary>
        public bool TryRead(ref Utf8JsonReader reader)
        {
            if (reader.ValueTextEquals("shared_memory_region"u8))
            {
                reader.Read();
                _region = reader.TokenType == JsonTokenType.String ? reader.GetString()
                    : throw new MlosException(SmiStatus.InvalidParam, "shared_memory_region must be a string (a registered region's name)");
                return true;
            }
            bool size = reader.ValueTextEquals("shared_memory_byte_size"u8);
            if (!size && !reader.ValueTextEquals("shared_memory_offset"u8)) return false;
            reader.Read();
            if (reader.TokenType != JsonTokenType.Number || !reader.TryGetUInt64(out var n))
                throw new MlosException(SmiStatus.InvalidParam, $"{(size ? "shared_memory_byte_size" : "shared_memory_offset")} must be a non-negative integer");
            if (size) _size = n;
            else _offset = n;
            return true;
        }

        /// <summary>Where the tensor lives, or null when it names no region; a size or offset without a region is refused.</summary>
        public readonly SharedMemoryReference? Reference(string what) => _region is { } region
            ? new SharedMemoryReference(region, _size, _offset ?? 0)
            : _size is not null || _offset is not null
                ? throw new MlosException(SmiStatus.InvalidParam, $"{what} gives a shared-memory size or offset but no shared_memory_region")
                : null;
    }

    private static MlosException BadShape(ReadOnlySpan<byte> name) =>
        new(SmiStatus.InvalidParam, $"input '{Text(name)}' has a bad shape: \"shape\" must be an array of non-negative integers");

    private static string Text(ReadOnlySpan<byte> utf8) => Encoding.UTF8.GetString(utf8);
}
