using System.Buffers;
using System.Text.Json;
using Mlos.Core.Models;

namespace Mlos.Server;

/// <summary>
/// The MLOS route's answer, <c>{"status":"success","model_id",…,"outputs":…}</c>, sent without
/// parsing or copying the plugin's output into a document: a JSON output is checked with a
/// reader and sent as it is, slice by slice (the convention's <c>{"outputs":[…]}</c> unwrapped to
/// its list); other UTF-8 goes as a string, anything else as base64.
/// </summary>
internal static class MlosAnswer
{
    public static async Task SendAsync(HttpContext http, Model model, MlosRun run)
    {
        var output = Output(run);
        // The reader checks JSON's structure, not the UTF-8 of its strings: text that is not UTF-8 goes as base64.
        bool utf8 = System.Text.Unicode.Utf8.IsValid(output);
        var json = utf8 ? JsonValue(output) : null;
        var head = new BlockWriter();
        try
        {
            using (var w = new Utf8JsonWriter(head, AnswerJson.WriterOptions))
            {
                w.WriteStartObject();
                w.WriteString("status", "success");
                w.WriteString("model_id", model.Id);
                w.WriteNumber("inference_time_us", (long)run.Elapsed.TotalMicroseconds);
                w.WriteNumber("queue_time_us", 0); // untyped requests wait in no batcher
                w.WriteNumber("output_size", run.Length);
                w.WritePropertyName("outputs");
                if (json is null)
                {
                    if (utf8) w.WriteStringValue(output); // plain text: as a string
                    else w.WriteBase64StringValue(output);
                    w.WriteEndObject();
                }
            }
            var value = json is { } range ? Bytes(run, range.Start, range.Length) : default;
            http.Response.StatusCode = 200;
            http.Response.ContentType = "application/json";
            http.Response.ContentLength = head.WrittenCount + (json is null ? 0 : value.Length + 1);
            var pipe = http.Response.BodyWriter;
            await PipeSlices.WriteAsync(pipe, head.Written, http.RequestAborted);
            if (json is not null)
            {
                await PipeSlices.WriteAsync(pipe, value, http.RequestAborted);
                pipe.Write("}"u8);
            }
            await pipe.FlushAsync(http.RequestAborted);
        }
        finally { head.Dispose(); }
    }

    private static unsafe ReadOnlySpan<byte> Output(in MlosRun run) => new(run.Output.Pointer, run.Length);

    private static unsafe NativeBytes Bytes(in MlosRun run, int start, int length) => new(run.Output.Pointer + start, length);

    /// <summary>
    /// Where the JSON value to embed lies in <paramref name="output"/>, or null when it is not one
    /// JSON value. Reads tokens only: nothing is allocated whatever the size.
    /// </summary>
    public static (int Start, int Length)? JsonValue(ReadOnlySpan<byte> output)
    {
        var reader = new Utf8JsonReader(output, new JsonReaderOptions { MaxDepth = 256 });
        try
        {
            if (!reader.Read()) return null;
            var probe = reader; // a copy looks for the convention's wrapper without moving the reader
            if (Unwrapped(ref probe) is { } inner) return probe.Read() ? null : inner;
            int start = (int)reader.TokenStartIndex;
            reader.Skip();
            int end = (int)reader.BytesConsumed;
            return reader.Read() ? null : (start, end - start);
        }
        catch (JsonException) { return null; }
    }

    /// <summary>The list of <c>{"outputs": […]}</c>, the reader standing on its start; null for any other value.</summary>
    private static (int Start, int Length)? Unwrapped(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartObject || !reader.Read() || reader.TokenType != JsonTokenType.PropertyName
            || !reader.ValueTextEquals("outputs"u8) || !reader.Read())
            return null;
        int start = (int)reader.TokenStartIndex;
        reader.Skip();
        int end = (int)reader.BytesConsumed;
        return reader.Read() && reader.TokenType == JsonTokenType.EndObject ? (start, end - start) : null;
    }
}
