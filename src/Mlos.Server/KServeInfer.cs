using System.Runtime.InteropServices;
using System.Text.Json;
using Mlos.Core;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Server;

/// <summary>
/// <c>POST /v2/models/{m}[/versions/{v}]/infer</c> with JSON tensors: each input's data is
/// encoded once into a pinned buffer that the plugin reads in place; outputs come back in
/// plugin-owned memory and are written straight into the response, then released.
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
        using var doc = JsonDocument.Parse(body);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("inputs", out var inputs) || inputs.ValueKind != JsonValueKind.Array)
            throw new MlosException(SmiStatus.InvalidParam, "a v2 inference request needs \"inputs\": [{\"name\",\"shape\",\"datatype\",\"data\"}]");
        var decoded = inputs.EnumerateArray().Select(Decode).ToArray();
        var requestId = root.TryGetProperty("id", out var id) ? id.GetString() : null;
        using var ticket = state.Admit(model.Id);
        var answer = Run(state.Core, model, decoded, requestId);
        await Responses.Raw(http, 200, answer);
    }

    private sealed record Input(string Name, SmiDtype Dtype, long[] Shape, byte[] Data);

    private static Input Decode(JsonElement t)
    {
        string name = t.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()!
            : throw new MlosException(SmiStatus.InvalidParam, "every input needs a \"name\"");
        var dtype = t.TryGetProperty("datatype", out var d) ? SmiDtypes.Parse(d.GetString()) : SmiDtype.Invalid;
        if (dtype == SmiDtype.Invalid) throw new MlosException(SmiStatus.InvalidParam, $"input '{name}' needs a KServe \"datatype\" (FP32, INT64, BYTES...)");
        if (!t.TryGetProperty("shape", out var s) || s.ValueKind != JsonValueKind.Array)
            throw new MlosException(SmiStatus.InvalidParam, $"input '{name}' needs a \"shape\"");
        var shape = s.EnumerateArray().Select(x => x.TryGetInt64(out var v) && v >= 0 ? v
            : throw new MlosException(SmiStatus.InvalidParam, $"input '{name}' has a bad shape {s.GetRawText()}")).ToArray();
        if (!t.TryGetProperty("data", out var data)) throw new MlosException(SmiStatus.InvalidParam, $"input '{name}' has no \"data\"");
        byte[] bytes;
        long count;
        try { bytes = MlosConvention.EncodeValues(name, dtype, data, out count); }
        catch (SmiException e) { throw new MlosException(e.Status, e.Message); }
        long expected = shape.Aggregate(1L, (a, b) => a * b);
        if (count != expected)
            throw new MlosException(SmiStatus.InvalidParam, $"input '{name}' has {count} values; shape [{string.Join(",", shape)}] needs {expected}");
        return new Input(name, dtype, shape, bytes);
    }

    private static unsafe byte[] Run(MlosCore core, Mlos.Core.Models.Model model, Input[] inputs, string? requestId)
    {
        var pins = inputs.Select(i => GCHandle.Alloc(i.Data, GCHandleType.Pinned)).ToArray();
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
                    Data = (void*)pins[i].AddrOfPinnedObject(), ByteSize = (nuint)inputs[i].Data.Length,
                };
                inputs[i].Shape.AsSpan(0, Math.Min(inputs[i].Shape.Length, SmiVersion.MaxDims)).CopyTo(tensors[i].Shape);
            }
            fixed (SmiTensor* t = tensors)
            fixed (SmiTensor* o = outputs)
            {
                core.Infer(model, t, (nuint)tensors.Length, o, &count);
                return Write(model, requestId, new ReadOnlySpan<SmiTensor>(o, (int)count));
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

    private static unsafe byte[] Write(Mlos.Core.Models.Model model, string? requestId, ReadOnlySpan<SmiTensor> outputs)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(1024);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("model_name", model.Id);
            if (model.Version is not null) w.WriteString("model_version", model.Version);
            if (requestId is not null) w.WriteString("id", requestId);
            w.WriteStartArray("outputs");
            foreach (ref readonly var t in outputs)
            {
                w.WriteStartObject();
                w.WriteString("name", Utf8.Read(t.Name));
                w.WriteString("datatype", SmiDtypes.Name(t.Dtype));
                w.WriteStartArray("shape");
                foreach (var d in t.Dims) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WritePropertyName("data");
                MlosConvention.WriteValues(w, t.Dtype, new ReadOnlySpan<byte>(t.Data, checked((int)t.ByteSize)));
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }
}
