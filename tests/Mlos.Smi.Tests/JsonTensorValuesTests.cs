using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;
using Xunit.Abstractions;

namespace Mlos.Smi.Tests;

/// <summary>The streaming JSON tensor-values reader on its own: layouts, shapes, errors, memory.</summary>
public unsafe class JsonTensorValuesTests(ITestOutputHelper log)
{
    private static (JsonTensorExtent Extent, byte[] Bytes) Read(ReadOnlySpan<byte> json, SmiDtype dtype)
    {
        var reader = new Utf8JsonReader(json);
        reader.Read();
        using var buffer = new NativeBuffer();
        var extent = JsonTensorValues.Read(ref reader, dtype, "x"u8, buffer);
        Assert.Equal(buffer.Length, extent.ByteSize);
        return (extent, new ReadOnlySpan<byte>(buffer.Pointer, (int)buffer.Length).ToArray());
    }

    private static SmiException Refused(string json, SmiDtype dtype) => Refused(Encoding.UTF8.GetBytes(json), dtype);

    private static SmiException Refused(byte[] json, SmiDtype dtype)
    {
        var e = Assert.Throws<SmiException>(() => Read(json, dtype));
        Assert.Equal(SmiStatus.InvalidParam, e.Status);
        return e;
    }

    public static TheoryData<SmiDtype, string, byte[]> Layouts() => new()
    {
        { SmiDtype.Bool, "[true,false,1,0]", [1, 0, 1, 0] },
        { SmiDtype.Int8, "[-128,127]", [0x80, 0x7F] },
        { SmiDtype.UInt8, "[0,255]", [0x00, 0xFF] },
        { SmiDtype.Int16, "[-2,258]", [0xFE, 0xFF, 0x02, 0x01] },
        { SmiDtype.UInt16, "[65535]", [0xFF, 0xFF] },
        { SmiDtype.Int32, "[-1,16909060]", [0xFF, 0xFF, 0xFF, 0xFF, 0x04, 0x03, 0x02, 0x01] },
        { SmiDtype.UInt32, "[4294967295]", [0xFF, 0xFF, 0xFF, 0xFF] },
        { SmiDtype.Int64, "[-9223372036854775808]", [0, 0, 0, 0, 0, 0, 0, 0x80] },
        { SmiDtype.UInt64, "[18446744073709551615]", [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF] },
        { SmiDtype.Fp16, "[1.5,-2]", [0x00, 0x3E, 0x00, 0xC0] },
        { SmiDtype.Bf16, "[1.5,-2]", [0xC0, 0x3F, 0x00, 0xC0] },
        { SmiDtype.Fp32, "[1.5,-2]", [0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x00, 0xC0] },
        { SmiDtype.Fp64, "[1.5]", [0, 0, 0, 0, 0, 0, 0xF8, 0x3F] },
        // KServe's BYTES layout: a little-endian uint32 length, then the unescaped UTF-8
        { SmiDtype.Bytes, """["hi","","\u00e9\ud83d\ude00"]""", [2, 0, 0, 0, (byte)'h', (byte)'i', 0, 0, 0, 0, 6, 0, 0, 0, 0xC3, 0xA9, 0xF0, 0x9F, 0x98, 0x80] },
    };

    [Theory]
    [MemberData(nameof(Layouts))]
    public void Every_dtype_json_carries_is_decoded_to_its_native_layout(SmiDtype dtype, string json, byte[] expected)
    {
        var (extent, bytes) = Read(Encoding.UTF8.GetBytes(json), dtype);
        Assert.Equal(expected, bytes);
        Assert.Equal(1, extent.Rank);
    }

    [Theory]
    [InlineData("7", new long[0], 1)]
    [InlineData("[]", new long[] { 0 }, 0)]
    [InlineData("[[]]", new long[] { 1, 0 }, 0)]
    [InlineData("[[],[]]", new long[] { 2, 0 }, 0)]
    [InlineData("[1,2,3]", new long[] { 3 }, 3)]
    [InlineData("[[1,2,3],[4,5,6]]", new long[] { 2, 3 }, 6)]
    [InlineData("[[[1],[2]],[[3],[4]],[[5],[6]]]", new long[] { 3, 2, 1 }, 6)]
    public void The_nesting_gives_the_shape(string json, long[] dims, long count)
    {
        var (extent, bytes) = Read(Encoding.UTF8.GetBytes(json), SmiDtype.Int32);
        Assert.Equal(dims, extent.Dims.ToArray());
        Assert.Equal(count, extent.Count);
        Assert.Equal(count * 4, bytes.Length);
    }

    [Theory]
    [InlineData("[[1,2],[3]]")]
    [InlineData("[[1],[2,3]]")]
    [InlineData("[[1],2]")]
    [InlineData("[1,[2]]")]
    [InlineData("[[],[1]]")]
    [InlineData("[[1],[]]")]
    [InlineData("[[],5]")]
    [InlineData("[[[1]],[2]]")]
    [InlineData("[[[1],[2]],[[3]]]")]
    public void A_ragged_array_is_refused(string json) =>
        Assert.Contains("input 'x' is not a rectangular array", Refused(json, SmiDtype.Int32).Message);

    [Fact]
    public void Nesting_deeper_than_smi_max_dims_is_refused()
    {
        var json = new string('[', SmiVersion.MaxDims + 1) + "1" + new string(']', SmiVersion.MaxDims + 1);
        Assert.Contains($"more than {SmiVersion.MaxDims} dimensions", Refused(json, SmiDtype.Int32).Message);
        var deepest = new string('[', SmiVersion.MaxDims) + "1" + new string(']', SmiVersion.MaxDims);
        Assert.Equal(SmiVersion.MaxDims, Read(Encoding.UTF8.GetBytes(deepest), SmiDtype.Int32).Extent.Rank);
    }

    [Theory]
    [InlineData("[\"abc\"]", SmiDtype.Fp32, "input 'x' (FP32) needs a number, not \"abc\"")]
    [InlineData("[true]", SmiDtype.Fp32, "input 'x' (FP32) needs a number, not true")]
    [InlineData("[null]", SmiDtype.Int32, "input 'x' (INT32) needs a number, not null")]
    [InlineData("[{\"a\":1}]", SmiDtype.Fp32, "input 'x' (FP32) needs a number, not {…}")]
    [InlineData("[300]", SmiDtype.UInt8, "input 'x' (UINT8) needs a UINT8, not 300")]
    [InlineData("[-1]", SmiDtype.UInt64, "input 'x' (UINT64) needs a UINT64, not -1")]
    [InlineData("[128]", SmiDtype.Int8, "input 'x' (INT8) needs an INT8, not 128")]
    [InlineData("[1.5]", SmiDtype.Int64, "input 'x' (INT64) needs an INT64, not 1.5")]
    [InlineData("[9223372036854775808]", SmiDtype.Int64, "input 'x' (INT64) needs an INT64, not 9223372036854775808")]
    [InlineData("[2]", SmiDtype.Bool, "input 'x' (BOOL) needs true, false, 0 or 1, not 2")]
    [InlineData("[1]", SmiDtype.Bytes, "input 'x' is BYTES: its elements must be strings, not 1")]
    public void A_value_the_dtype_does_not_take_is_named(string json, SmiDtype dtype, string reason) =>
        Assert.Contains(reason, Refused(json, dtype).Message);

    [Fact]
    public void A_long_wrong_value_is_cut_short_in_the_message()
    {
        var message = Refused($"[\"{new string('z', 10_000)}\"]", SmiDtype.Fp32).Message;
        Assert.True(message.Length < 200, message);
        Assert.EndsWith("…\"", message);
    }

    public static TheoryData<byte[]> NotUnicode()
    {
        byte[] brokenSequence = [.. "[\"a"u8, 0xC3, 0x28, .. "\"]"u8];
        byte[] overlong = [.. "[\""u8, 0xC0, 0xAF, .. "\"]"u8];
        byte[] cutShort = [.. "[\"ok\",\"\\n"u8, 0xE2, 0x82, .. "\"]"u8];
        return new()
        {
            brokenSequence,
            overlong,
            cutShort,
            "[\"\\ud800\"]"u8.ToArray(),
            "[\"\\ud800x\"]"u8.ToArray(),
            "[\"a\\udc00\"]"u8.ToArray(),
        };
    }

    [Theory]
    [MemberData(nameof(NotUnicode))]
    public void A_bytes_string_that_is_not_unicode_is_refused(byte[] json) =>
        Assert.Contains("input 'x' (BYTES) holds a string that is not valid Unicode", Refused(json, SmiDtype.Bytes).Message);

    [Theory]
    [InlineData(SmiDtype.Invalid)]
    [InlineData((SmiDtype)99)]
    public void A_dtype_json_cannot_carry_is_not_supported(SmiDtype dtype)
    {
        var e = Assert.Throws<SmiException>(() => Read("[1]"u8, dtype));
        Assert.Equal(SmiStatus.NotSupported, e.Status);
    }

    [Fact]
    public void The_reader_is_left_on_the_values_last_token_and_values_append()
    {
        var reader = new Utf8JsonReader("""{"a":[[1,2]],"b":3,"c":[]}"""u8);
        using var buffer = new NativeBuffer(1);
        reader.Read();
        reader.Read();
        reader.Read();
        Assert.Equal(2, JsonTensorValues.Read(ref reader, SmiDtype.Int32, "a"u8, buffer).Count);
        Assert.Equal(JsonTokenType.EndArray, reader.TokenType);
        reader.Read();
        Assert.True(reader.ValueTextEquals("b"u8));
        reader.Read();
        var b = JsonTensorValues.Read(ref reader, SmiDtype.Int32, "b"u8, buffer);
        Assert.Equal((1L, (nuint)4, 0), (b.Count, b.ByteSize, b.Rank));
        reader.Read();
        reader.Read();
        Assert.Equal(0, JsonTensorValues.Read(ref reader, SmiDtype.Int32, "c"u8, buffer).Count);
        Assert.True(reader.Read());
        Assert.Equal(JsonTokenType.EndObject, reader.TokenType);
        Assert.Equal([1, 2, 3], new ReadOnlySpan<int>(buffer.Pointer, 3).ToArray());
    }

    [Fact]
    public void Values_cut_off_by_a_partial_block_are_refused()
    {
        using var buffer = new NativeBuffer();
        var e = Assert.Throws<SmiException>(() =>
        {
            var reader = new Utf8JsonReader("[[1,2],[3"u8, isFinalBlock: false, default);
            reader.Read();
            JsonTensorValues.Read(ref reader, SmiDtype.Int32, "x"u8, buffer);
        });
        Assert.Contains("ends before its arrays close", e.Message);
    }

    [Theory]
    [InlineData("[[1,2],[3,4]]", SmiDtype.Int64)]
    [InlineData("-5", SmiDtype.Int64)]
    [InlineData("[1,2.5]", SmiDtype.Fp32)]
    [InlineData("[1,\"a\"]", SmiDtype.Fp32)]
    [InlineData("[1,true]", SmiDtype.Fp32)]
    [InlineData("[9223372036854775808]", SmiDtype.Fp32)]
    [InlineData("[]", SmiDtype.Fp32)]
    [InlineData("[[],[]]", SmiDtype.Fp32)]
    [InlineData("[null]", SmiDtype.Fp32)]
    [InlineData("[[\"a\"],[\"b\"]]", SmiDtype.Bytes)]
    [InlineData("[false,true]", SmiDtype.Bool)]
    public void A_value_without_a_declared_dtype_implies_one(string json, SmiDtype expected)
    {
        var reader = new Utf8JsonReader(Encoding.UTF8.GetBytes(json));
        reader.Read();
        var start = reader.TokenType;
        Assert.Equal(expected, JsonTensorValues.Guess(reader));
        Assert.Equal(start, reader.TokenType);
        Assert.Equal(0, reader.CurrentDepth);
    }

    [Fact]
    public void A_small_tensor_allocates_nothing()
    {
        var json = Encoding.UTF8.GetBytes($"[{string.Join(",", Enumerable.Range(0, 256).Select(i => i * 0.25))}]");
        using var buffer = new NativeBuffer(256 * sizeof(float));
        void Decode()
        {
            buffer.Clear();
            var reader = new Utf8JsonReader(json);
            reader.Read();
            JsonTensorValues.Read(ref reader, SmiDtype.Fp32, "x"u8, buffer);
        }
        Decode();
        long before = GC.GetAllocatedBytesForCurrentThread();
        Decode();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(63.75f, new ReadOnlySpan<float>(buffer.Pointer, 256)[255]);
    }

    [Fact]
    public void A_40_MB_array_puts_nothing_of_its_size_on_the_managed_heap()
    {
        var json = LargeJson.Floats(4_500_000);
        Assert.True(json.Length > 40_000_000);
        Read("[1.5]"u8, SmiDtype.Fp32); // first calls load types and JIT code

        long before = GC.GetAllocatedBytesForCurrentThread();
        var reader = new Utf8JsonReader(json);
        reader.Read();
        using var buffer = new NativeBuffer();
        var extent = JsonTensorValues.Read(ref reader, SmiDtype.Fp32, "x"u8, buffer);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        log.WriteLine($"decoding {json.Length} bytes of JSON allocated {allocated} managed bytes");
        Assert.True(allocated < 1_000_000, $"decoding {json.Length} bytes of JSON allocated {allocated} managed bytes");
        Assert.Equal(4_500_000, extent.Count);
        Assert.Equal(4_500_000L * sizeof(float), (long)buffer.Length);
        Assert.Equal(9.500067f, BinaryPrimitives.ReadSingleLittleEndian(new ReadOnlySpan<byte>(buffer.Pointer + 4 * 4_499_999, 4)));
    }
}
