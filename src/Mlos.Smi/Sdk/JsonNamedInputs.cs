using System.Runtime.InteropServices;
using System.Text.Json;
using Mlos.Smi.Abi;

namespace Mlos.Smi.Sdk;

/// <summary>
/// The inputs of a JSON named-arrays request, <c>{"input_ids":[[1,2]],"mask":[[1,1]]}</c>, as
/// typed tensors of the model's dtypes and shapes, read off the caller's bytes into native
/// memory that this owns until it is disposed.
/// </summary>
internal sealed unsafe class JsonNamedInputs : IDisposable
{
    private readonly List<NativeBuffer> _owned = new();
    private readonly List<SmiTensor> _tensors = new();

    /// <summary>The decoded inputs; their data and names live until <see cref="Dispose"/>.</summary>
    public ReadOnlySpan<SmiTensor> Tensors => CollectionsMarshal.AsSpan(_tensors);

    /// <summary>
    /// Decodes <paramref name="json"/>, which starts with '{'. Throws <see cref="JsonException"/>
    /// whenever it is not JSON, even where a request error comes first, so that the caller can
    /// try it as raw bytes as it would have before the stream reached that error.
    /// </summary>
    /// <param name="specs">The model's inputs; names, and where known dtypes and dims (-1: dynamic).</param>
    public void Decode(ReadOnlySpan<byte> json, IReadOnlyList<SmiTensorSpec> specs)
    {
        var reader = new Utf8JsonReader(json);
        try
        {
            reader.Read();
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName) DecodeInput(ref reader, specs);
            // Anything after the object but whitespace makes the reader throw.
            reader.Read();
        }
        catch (SmiException)
        {
            ReadToEnd(reader);
            throw;
        }
    }

    /// <summary>Reads a copy of <paramref name="reader"/> to the end, which throws if the rest is not JSON.</summary>
    private static void ReadToEnd(Utf8JsonReader reader)
    {
        while (reader.Read()) { }
    }

    /// <summary>The reader stands on the input's name; it is left on the value's last token.</summary>
    private void DecodeInput(ref Utf8JsonReader reader, IReadOnlyList<SmiTensorSpec> specs)
    {
        int index = FindSpec(ref reader, specs);
        if (index < 0 && specs.Count > 0)
            throw new SmiException(SmiStatus.InvalidParam,
                $"the model has no input '{JsonText.Shown(ref reader)}' (inputs: {string.Join(", ", specs.Select(s => Utf8.Read(s.Name)))})");
        var spec = index >= 0 ? specs[index] : default;
        byte* name = index >= 0 ? spec.Name : CopyName(ref reader);
        var nameText = MemoryMarshal.CreateReadOnlySpanFromNullTerminated(name);

        reader.Read();
        var dtype = spec.Dtype != SmiDtype.Invalid ? spec.Dtype : JsonTensorValues.Guess(reader);
        var data = Own(new NativeBuffer());
        var values = JsonTensorValues.Read(ref reader, dtype, nameText, data);

        var dims = spec.Dims;
        if (!dims.IsEmpty && values.Rank != dims.Length && values.Rank > 1)
            throw new SmiException(SmiStatus.InvalidParam,
                $"input '{JsonText.Name(nameText)}' has rank {values.Rank}; the model expects rank {dims.Length} [{string.Join(",", dims.ToArray())}]");
        // A flat array (or a scalar) takes the model's shape, where the model declares one.
        ReadOnlySpan<long> shape = dims.IsEmpty || values.Rank == dims.Length ? values.Dims : MlosConvention.InferShape(JsonText.Name(nameText), dims, values.Count);
        var tensor = new SmiTensor { Name = name, Dtype = dtype, NDim = (uint)shape.Length, Data = data.Pointer, ByteSize = values.ByteSize };
        shape.CopyTo(tensor.Shape);
        _tensors.Add(tensor);
    }

    /// <summary>The index of the spec named by the property the reader stands on, or -1.</summary>
    private static int FindSpec(ref Utf8JsonReader reader, IReadOnlyList<SmiTensorSpec> specs)
    {
        try
        {
            for (int i = 0; i < specs.Count; i++)
            {
                var specName = specs[i].Name;
                if (specName != null && reader.ValueTextEquals(MemoryMarshal.CreateReadOnlySpanFromNullTerminated(specName))) return i;
            }
        }
        catch (InvalidOperationException) // the reader cannot unescape the name to compare it
        {
            throw NotUnicode(ref reader);
        }
        return -1;
    }

    private static SmiException NotUnicode(ref Utf8JsonReader reader) =>
        new(SmiStatus.InvalidParam, $"input name {JsonText.Shown(ref reader)} is not valid Unicode (invalid UTF-8 or a lone surrogate escape)");

    /// <summary>A NUL-terminated copy of the property name, for a model that declares no inputs.</summary>
    private byte* CopyName(ref Utf8JsonReader reader)
    {
        int room = JsonText.MaxLength(ref reader);
        var buffer = Own(new NativeBuffer((nuint)room + 1));
        if (!JsonText.TryCopyUtf8(ref reader, new Span<byte>(buffer.Pointer, room), out int length)) throw NotUnicode(ref reader);
        buffer.Pointer[length] = 0;
        return buffer.Pointer;
    }

    private NativeBuffer Own(NativeBuffer buffer)
    {
        _owned.Add(buffer);
        return buffer;
    }

    public void Dispose()
    {
        foreach (var buffer in _owned) buffer.Dispose();
        _owned.Clear();
        _tensors.Clear();
    }
}
