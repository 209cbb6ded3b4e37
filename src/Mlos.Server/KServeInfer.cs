using System.Runtime.InteropServices;
using System.Text.Json;
using Mlos.Core;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Server;

/// <summary>
/// <c>POST /v2/models/{m}[/versions/{v}]/infer</c>: JSON tensors, and KServe's binary-data
/// extension (<c>Inference-Header-Content-Length</c>: a JSON header, then each input with
/// <c>"parameters":{"binary_data_size":n}</c> as raw bytes, in order). Binary inputs are read by
/// the plugin in place inside the request buffer; JSON inputs are encoded once. Outputs come back
/// in plugin-owned memory and are written straight into the response (as JSON, or as raw bytes
/// after the header when <c>binary_data_output</c> or an output's <c>binary_data</c> asks), then
/// released.
/// </summary>
internal static class KServeInfer
{
    private const int MaxOutputs = 64;

    public static async Task Handle(HttpContext http, ServerState state, string name, string? version)
    {
        var body = await Responses.Body(http);
        var model = state.Core.GetModel(Uri.UnescapeDataString(name));
        if (version is not null && model.Version is not null && version != model.Version)
            throw new MlosException(SmiStatus.NotFound, $"model '{model.Id}' has version {model.Version}, not {version}");
        int headerLength = body.Length;
        if (http.Request.Headers.TryGetValue(HeaderLength, out var h) &&
            (!int.TryParse(h.ToString(), out headerLength) || headerLength < 0 || headerLength > body.Length))
            throw new MlosException(SmiStatus.InvalidParam, $"{HeaderLength} {h} does not fit a body of {body.Length} bytes");
        using var doc = JsonDocument.Parse(body.AsMemory(0, headerLength));
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("inputs", out var inputs) || inputs.ValueKind != JsonValueKind.Array)
            throw new MlosException(SmiStatus.InvalidParam, "a v2 inference request needs \"inputs\": [{\"name\",\"shape\",\"datatype\",\"data\"}]");
        int offset = headerLength;
        var decoded = inputs.EnumerateArray().Select(t => Decode(t, body, ref offset)).ToArray();
        if (offset != body.Length)
            throw new MlosException(SmiStatus.InvalidParam, $"{body.Length - offset} bytes after the binary inputs are not claimed by any input");
        var requestId = root.TryGetProperty("id", out var id) ? id.GetString() : null;
        using var ticket = state.Admit(model.Id);
        var (answer, binaryHeader) = Run(state.Core, model, decoded, requestId, BinaryOutputs(root));
        if (binaryHeader >= 0)
        {
            http.Response.Headers[HeaderLength] = binaryHeader.ToString();
            http.Response.StatusCode = 200;
            http.Response.ContentType = "application/octet-stream";
            http.Response.ContentLength = answer.Length;
            await http.Response.Body.WriteAsync(answer);
            return;
        }
        await Responses.Raw(http, 200, answer);
    }

    private const string HeaderLength = "Inference-Header-Content-Length";

    /// <summary>Which outputs go back as raw bytes: all (<c>binary_data_output</c>), some (per output), or none.</summary>
    private static Func<string, bool> BinaryOutputs(JsonElement root)
    {
        bool all = root.TryGetProperty("parameters", out var p) && p.TryGetProperty("binary_data_output", out var b) && b.ValueKind == JsonValueKind.True;
        var named = new HashSet<string>();
        if (root.TryGetProperty("outputs", out var outputs) && outputs.ValueKind == JsonValueKind.Array)
            foreach (var o in outputs.EnumerateArray())
                if (o.TryGetProperty("name", out var n) && o.TryGetProperty("parameters", out var op) &&
                    op.TryGetProperty("binary_data", out var bd) && bd.ValueKind == JsonValueKind.True)
                    named.Add(n.GetString()!);
        return name => all || named.Contains(name);
    }

    /// <summary>An input's bytes: a slice of a buffer (the request body for binary inputs).</summary>
    private sealed record Input(string Name, SmiDtype Dtype, long[] Shape, byte[] Buffer, int Offset, int Length);

    private static Input Decode(JsonElement t, byte[] body, ref int offset)
    {
        string name = t.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()!
            : throw new MlosException(SmiStatus.InvalidParam, "every input needs a \"name\"");
        var dtype = t.TryGetProperty("datatype", out var d) ? SmiDtypes.Parse(d.GetString()) : SmiDtype.Invalid;
        if (dtype == SmiDtype.Invalid) throw new MlosException(SmiStatus.InvalidParam, $"input '{name}' needs a KServe \"datatype\" (FP32, INT64, BYTES...)");
        if (!t.TryGetProperty("shape", out var s) || s.ValueKind != JsonValueKind.Array)
            throw new MlosException(SmiStatus.InvalidParam, $"input '{name}' needs a \"shape\"");
        var shape = s.EnumerateArray().Select(x => x.TryGetInt64(out var v) && v >= 0 ? v
            : throw new MlosException(SmiStatus.InvalidParam, $"input '{name}' has a bad shape {s.GetRawText()}")).ToArray();
        long expected = shape.Aggregate(1L, (a, b) => a * b);
        if (t.TryGetProperty("parameters", out var parameters) && parameters.TryGetProperty("binary_data_size", out var sizeValue))
        {
            if (!sizeValue.TryGetInt32(out var size) || size < 0 || size > body.Length - offset)
                throw new MlosException(SmiStatus.InvalidParam, $"input '{name}': binary_data_size {sizeValue.GetRawText()} exceeds the {body.Length - offset} bytes left");
            int element = SmiDtypes.ElementSize(dtype);
            if (element > 0 && size != expected * element)
                throw new MlosException(SmiStatus.InvalidParam, $"input '{name}' has {size} bytes; shape [{string.Join(",", shape)}] of {SmiDtypes.Name(dtype)} needs {expected * element}");
            var input = new Input(name, dtype, shape, body, offset, size);
            offset += size;
            return input;
        }
        if (!t.TryGetProperty("data", out var data)) throw new MlosException(SmiStatus.InvalidParam, $"input '{name}' has no \"data\"");
        byte[] bytes;
        long count;
        try { bytes = MlosConvention.EncodeValues(name, dtype, data, out count); }
        catch (SmiException e) { throw new MlosException(e.Status, e.Message); }
        if (count != expected)
            throw new MlosException(SmiStatus.InvalidParam, $"input '{name}' has {count} values; shape [{string.Join(",", shape)}] needs {expected}");
        return new Input(name, dtype, shape, bytes, 0, bytes.Length);
    }

    private static unsafe (byte[] Answer, int BinaryHeader) Run(MlosCore core, Mlos.Core.Models.Model model, Input[] inputs, string? requestId, Func<string, bool> binary)
    {
        var pins = inputs.Select(i => GCHandle.Alloc(i.Buffer, GCHandleType.Pinned)).ToArray();
        var tensors = new SmiTensor[inputs.Length];
        var outputs = new SmiTensor[MaxOutputs];
        nuint count = MaxOutputs;
        try
        {
            for (int i = 0; i < inputs.Length; i++)
            {
                tensors[i] = new SmiTensor
                {
                    Name = Utf8.Intern(inputs[i].Name), Dtype = inputs[i].Dtype, NDim = (uint)inputs[i].Shape.Length,
                    Data = (byte*)pins[i].AddrOfPinnedObject() + inputs[i].Offset, ByteSize = (nuint)inputs[i].Length,
                };
                inputs[i].Shape.AsSpan(0, Math.Min(inputs[i].Shape.Length, SmiVersion.MaxDims)).CopyTo(tensors[i].Shape);
            }
            fixed (SmiTensor* t = tensors)
            fixed (SmiTensor* o = outputs)
            {
                core.Infer(model, t, (nuint)tensors.Length, o, &count);
                return Write(model, requestId, new ReadOnlySpan<SmiTensor>(o, (int)count), binary);
            }
        }
        finally
        {
            for (int i = 0; i < MaxOutputs; i++)
                fixed (SmiTensor* o = &outputs[i])
                    if (o->Release != null) o->Release(o);
            foreach (var p in pins) p.Free();
        }
    }

    private static unsafe (byte[], int) Write(Mlos.Core.Models.Model model, string? requestId, ReadOnlySpan<SmiTensor> outputs, Func<string, bool> binary)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(1024);
        var raw = new List<(nint Data, int Length)>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("model_name", model.Id);
            if (model.Version is not null) w.WriteString("model_version", model.Version);
            if (requestId is not null) w.WriteString("id", requestId);
            w.WriteStartArray("outputs");
            foreach (ref readonly var t in outputs)
            {
                bool asBinary = binary(Utf8.Read(t.Name)!);
                w.WriteStartObject();
                MlosConvention.WriteTensor(w, in t, withData: !asBinary);
                if (asBinary)
                {
                    w.WriteStartObject("parameters");
                    w.WriteNumber("binary_data_size", (long)t.ByteSize);
                    w.WriteEndObject();
                    raw.Add(((nint)t.Data, checked((int)t.ByteSize)));
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        if (raw.Count == 0) return (buffer.WrittenSpan.ToArray(), -1);
        // Header then each binary output, copied once from plugin memory into the response.
        int header = buffer.WrittenCount;
        var answer = new byte[header + raw.Sum(r => r.Length)];
        buffer.WrittenSpan.CopyTo(answer);
        int at = header;
        foreach (var (data, length) in raw)
        {
            new ReadOnlySpan<byte>((void*)data, length).CopyTo(answer.AsSpan(at));
            at += length;
        }
        return (answer, header);
    }
}
