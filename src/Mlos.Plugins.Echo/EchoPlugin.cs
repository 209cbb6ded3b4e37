using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Plugins.Echo;

/// <summary>Per-model state: the registration, whether it is loaded, and its simulated latency.</summary>
public sealed class EchoModel(SmiModelDescription description)
{
    public SmiModelDescription Description { get; } = description;
    public volatile bool Loaded;
    public int CpuThreads = 1;

    /// <summary>
    /// From the model config <c>{"delay_us": N}</c>: each inference takes at least this long, so
    /// tests can hold requests in flight (unload while running) and benchmarks can model work.
    /// </summary>
    public int DelayMicroseconds { get; } = ReadDelay(description.Config);

    private static int ReadDelay(string? config)
    {
        if (string.IsNullOrWhiteSpace(config) || config.TrimStart()[0] != '{') return 0; // a plain label
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(config);
            if (!doc.RootElement.TryGetProperty("delay_us", out var d)) return 0;
            return d.ValueKind == System.Text.Json.JsonValueKind.Number && d.TryGetInt32(out var us) && us >= 0 ? us
                : throw new SmiException(SmiStatus.InvalidParam, $"model config: delay_us must be a non-negative integer, not {d.GetRawText()}");
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new SmiException(SmiStatus.InvalidParam, $"model config is not valid JSON: {e.Message}");
        }
    }
}

/// <summary>
/// Echoes its input: untyped bytes are copied to the output, typed tensors come back unchanged
/// under the names <c>output_N</c>. Small, but a complete plugin on the SDK.
/// </summary>
public sealed unsafe class EchoPlugin : ISmiPlugin<EchoModel>
{
    public string PluginId => "csharp-echo";
    public string Name => "MLOS C# Echo Plugin";
    public string Version => "1.0.0";
    public string SupportedFrameworks => "echo";
    // An echo answers any tensors with themselves: its specs name defaults, not what it accepts.
    public SmiCapabilities Capabilities => SmiCapabilities.ThreadSafe | SmiCapabilities.Batching | SmiCapabilities.AnyInputs;

    public void Initialize(string? config) { }

    public EchoModel RegisterModel(SmiModelDescription model) => new(model);

    public void LoadModel(EchoModel model, string? path) => model.Loaded = true;

    public void UnloadModel(EchoModel model) => model.Loaded = false;

    public int Inference(EchoModel model, ReadOnlySpan<byte> input, Span<byte> output)
    {
        RequireLoaded(model);
        Delay(model);
        if (output.Length < input.Length)
            throw SmiException.BufferTooSmall((ulong)input.Length, (ulong)output.Length);
        input.CopyTo(output);
        return input.Length;
    }

    public void AllocateResources(EchoModel model, ReadOnlySpan<SmiResourceReq> requirements)
    {
        foreach (var r in requirements)
        {
            if (r.Type != SmiResourceType.CpuThreads)
                throw new SmiException(SmiStatus.NotSupported, $"echo runs on the CPU only; cannot honour a {r.Type} request");
            model.CpuThreads = (int)Math.Max(1, r.Amount);
        }
    }

    /// <summary>Written with a JSON writer: a model id is any text, and must not add keys of its own.</summary>
    public string GetModelInfo(EchoModel model)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(128);
        using (var w = new System.Text.Json.Utf8JsonWriter(buffer, new System.Text.Json.JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("name", model.Description.Name);
            w.WriteString("framework", "echo");
            w.WriteBoolean("loaded", model.Loaded);
            w.WriteNumber("cpu_threads", model.CpuThreads);
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    public SmiModelIo GetModelIo(EchoModel model)
    {
        var spec = new SmiTensorSpec { Name = Utf8.Intern("input_0"), Dtype = SmiDtype.Bytes, NDim = 1 };
        spec.Shape[0] = -1;
        var output = spec;
        output.Name = Utf8.Intern("output_0");
        return new SmiModelIo([spec], [output]);
    }

    public void Infer(EchoModel model, ReadOnlySpan<SmiTensor> inputs, ref SmiOutputs outputs)
    {
        RequireLoaded(model);
        Delay(model);
        outputs.Reserve(inputs.Length);
        for (int i = 0; i < inputs.Length; i++)
        {
            ref readonly var input = ref inputs[i];
            var data = outputs.Add(Utf8.Intern($"output_{i}"), input.Dtype, input.Dims, input.ByteSize);
            new ReadOnlySpan<byte>(input.Data, data.Length).CopyTo(data);
        }
    }

    private static void Delay(EchoModel model)
    {
        if (model.DelayMicroseconds <= 0) return;
        var until = System.Diagnostics.Stopwatch.GetTimestamp() + model.DelayMicroseconds * System.Diagnostics.Stopwatch.Frequency / 1_000_000;
        while (System.Diagnostics.Stopwatch.GetTimestamp() < until) Thread.Sleep(1);
    }

    private static void RequireLoaded(EchoModel model)
    {
        if (!model.Loaded)
            throw new SmiException(SmiStatus.InvalidState, $"model '{model.Description.Name}' is not loaded");
    }
}
