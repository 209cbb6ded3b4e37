using System.Diagnostics;
using System.Text.Json;
using Mlos.Core;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Server;

/// <summary>
/// One untyped inference of the MLOS route: the input (the body as it is, or the text of
/// <c>{"input": "text"}</c>) through the plugin into an answer buffer. The caller disposes it.
/// </summary>
internal readonly struct MlosRun(NativeBuffer output, int length, TimeSpan elapsed) : IDisposable
{
    public NativeBuffer Output { get; } = output;
    public int Length { get; } = length;
    public TimeSpan Elapsed { get; } = elapsed;

    public static unsafe MlosRun Run(ServerState state, Mlos.Core.Models.Model model, in RequestBody body)
    {
        NativeBuffer? text = null; // only an escaped text needs one
        try
        {
            var input = TextInput(body.Span, ref text);
            var start = Stopwatch.GetTimestamp();
            var (output, length) = Infer(state.Core, model, input);
            var elapsed = Stopwatch.GetElapsedTime(start);
            ServerMetrics.Inference(model.Id, elapsed.TotalSeconds, 0); // untyped requests wait in no batcher
            return new MlosRun(output, length, elapsed);
        }
        finally { text?.Dispose(); }
    }

    /// <summary>
    /// The bytes the plugin gets: the text of a body that is exactly <c>{"input": "…"}</c> (the
    /// guide's raw-bytes plugins), unescaped into <paramref name="text"/> when it must be;
    /// otherwise the body itself (named arrays, which the plugin reads). Found with a reader that
    /// stops at the first token that rules the text form out: no document of a large body.
    /// </summary>
    private static ReadOnlySpan<byte> TextInput(ReadOnlySpan<byte> body, ref NativeBuffer? text)
    {
        try { return FindText(body, ref text); }
        catch (InvalidOperationException) { throw NotText(); } // a name the reader could not unescape
    }

    private static unsafe ReadOnlySpan<byte> FindText(ReadOnlySpan<byte> body, ref NativeBuffer? text)
    {
        var reader = new Utf8JsonReader(body);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            throw new MlosException(SmiStatus.InvalidParam, "the request body must be a JSON object");
        if (reader.Read() && reader.TokenType == JsonTokenType.PropertyName && reader.ValueTextEquals("input"u8)
            && reader.Read() && reader.TokenType == JsonTokenType.String)
        {
            var value = reader.ValueSpan;
            bool escaped = reader.ValueIsEscaped;
            if (reader.Read() && reader.TokenType == JsonTokenType.EndObject)
            {
                reader.Read(); // throws on anything after the object
                if (escaped)
                {
                    text = new NativeBuffer((nuint)value.Length);
                    var copy = new Utf8JsonReader(body);
                    copy.Read();
                    copy.Read();
                    copy.Read();
                    value = new ReadOnlySpan<byte>(text.Pointer, copy.CopyString(new Span<byte>(text.Pointer, value.Length)));
                }
                return System.Text.Unicode.Utf8.IsValid(value) ? value : throw NotText();
            }
        }
        // Named arrays: the plugin reads them, but the body must be JSON to the end, as the old
        // document parse made sure; a cut-off body must not be taken for raw tensor bytes.
        while (reader.Read()) { }
        return body;
    }

    private static MlosException NotText() =>
        new(SmiStatus.InvalidParam, "the request holds text that is not valid: bytes that are not UTF-8 or an unpaired surrogate escape");

    /// <summary>
    /// The largest answer each model has given on this route. An untyped plugin that finds the
    /// buffer too small has run the model for nothing and runs it again in a larger one (a 64 KB
    /// MiniLM answer took 12.4 ms instead of 5.6): later requests start at the size the model is
    /// known to need. Pages of the buffer that the plugin does not write cost no memory.
    /// </summary>
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Mlos.Core.Models.Model, System.Runtime.CompilerServices.StrongBox<long>> s_answerSizes = new();

    /// <summary>The plugin's answer in an answer buffer, grown once when the plugin says how much it needs.</summary>
    private static unsafe (NativeBuffer Output, int Length) Infer(MlosCore core, Mlos.Core.Models.Model model, ReadOnlySpan<byte> input)
    {
        var known = s_answerSizes.GetValue(model, static _ => new System.Runtime.CompilerServices.StrongBox<long>());
        long capacity = Math.Max(Math.Max(64 * 1024, 2L * input.Length), Volatile.Read(ref known.Value));
        for (int attempt = 0; ; attempt++)
        {
            // Pages of the answer buffer that the plugin does not write cost no memory.
            var output = new NativeBuffer((nuint)Math.Min(capacity, Array.MaxLength));
            nuint size = output.Capacity;
            try
            {
                fixed (byte* i = input)
                    core.Inference(model, i, (nuint)input.Length, output.Pointer, &size);
                if (size > output.Capacity)
                    throw new MlosException(SmiStatus.Runtime, $"model '{model.Id}' reported an answer of {size} bytes in a buffer of {output.Capacity}");
                for (long seen = Volatile.Read(ref known.Value); (long)size > seen; seen = Volatile.Read(ref known.Value))
                    if (Interlocked.CompareExchange(ref known.Value, (long)size, seen) == seen) break;
                return (output, (int)size);
            }
            catch (MlosException e) when (attempt < 2 && e.Status is SmiStatus.BufferTooSmall or SmiStatus.OutOfMemory
                && size > output.Capacity && size <= (nuint)Array.MaxLength)
            {
                output.Dispose();
                capacity = (long)size;
            }
            catch
            {
                output.Dispose();
                throw;
            }
        }
    }

    public void Dispose() => Output.Dispose();
}
