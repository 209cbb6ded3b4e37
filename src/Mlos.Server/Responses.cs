using System.Buffers;
using System.Text.Json;
using Mlos.Core;
using Mlos.Smi.Abi;

namespace Mlos.Server;

/// <summary>JSON answers, written with Utf8JsonWriter (no reflection), and the status code of each failure.</summary>
internal static class Responses
{
    public static Task Json(HttpContext http, int status, Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var w = new Utf8JsonWriter(buffer, AnswerJson.WriterOptions))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        return Raw(http, status, buffer.WrittenMemory);
    }

    public static Task Raw(HttpContext http, int status, ReadOnlyMemory<byte> json)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json";
        http.Response.ContentLength = json.Length;
        return http.Response.Body.WriteAsync(json).AsTask();
    }

    /// <summary>
    /// The error answer with the HTTP code the failure maps to, and the one log line of a failed
    /// request: on the Open Inference Protocol routes (<c>/v2…</c>) the protocol's
    /// <c>{"error":…}</c>, which every KServe and Triton client reads; on the MLOS routes the
    /// original <c>{"status":"error","message":…}</c>. The client gets the message in plain words
    /// (<see cref="ClientText"/>).
    /// </summary>
    public static Task Error(HttpContext http, ServerState state, int status, string message)
    {
        var plain = Reported(http, state, status, message);
        if (IsOpenInferenceRoute(http.Request.Path)) return Json(http, status, w => w.WriteString("error", plain));
        return Json(http, status, w =>
        {
            w.WriteString("status", "error");
            w.WriteString("message", plain);
        });
    }

    /// <summary>The one log line of a failed request, and its message as the client gets it, in plain words (<see cref="ClientText"/>).</summary>
    public static string Reported(HttpContext http, ServerState state, int status, string message)
    {
        // Messages can quote what a client sent (names, values): bound what they cost to log and to clean.
        if (message.Length > MaxMessage) message = string.Concat(message.AsSpan(0, MaxMessage), "…");
        state.Log.Failed(http, status, message);
        return ClientText.Plain(message);
    }

    private const int MaxMessage = 2048;

    /// <summary><c>/v2</c> and everything below it: the Open Inference Protocol's routes.</summary>
    private static bool IsOpenInferenceRoute(PathString path) =>
        path.StartsWithSegments("/v2", StringComparison.Ordinal);

    public static int StatusCode(SmiStatus status) => status switch
    {
        SmiStatus.InvalidParam or SmiStatus.BufferTooSmall => StatusCodes.Status400BadRequest,
        SmiStatus.NotFound => StatusCodes.Status404NotFound,
        SmiStatus.AlreadyExists => StatusCodes.Status409Conflict,
        SmiStatus.InvalidState => StatusCodes.Status409Conflict,
        SmiStatus.NotSupported => StatusCodes.Status501NotImplemented,
        SmiStatus.Busy => StatusCodes.Status503ServiceUnavailable,
        SmiStatus.Timeout => StatusCodes.Status504GatewayTimeout,
        _ => StatusCodes.Status500InternalServerError,
    };

    /// <summary>Runs a route; every failure becomes a JSON error, never a stack trace or a dropped connection.</summary>
    public static async Task Guard(HttpContext http, ServerState state, Func<Task> route)
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        bool ok = false;
        try
        {
            await route();
            ok = http.Response.StatusCode < 400;
        }
        catch (Exception e) when (Handles(http, e)) { await Fail(http, state, e); }
        finally { Finish(http, state, start, ok); }
    }

    /// <summary>
    /// <see cref="Guard(HttpContext, ServerState, Func{Task})"/> for the inference routes: the route
    /// gets its argument instead of capturing it (a static lambda, no closure per request) and the
    /// async state machine comes from a pool instead of the heap.
    /// </summary>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))]
    public static async ValueTask Guard<TArg>(HttpContext http, ServerState state, TArg arg, Func<HttpContext, ServerState, TArg, ValueTask> route)
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        bool ok = false;
        try
        {
            await route(http, state, arg);
            ok = http.Response.StatusCode < 400;
        }
        catch (Exception e) when (Handles(http, e)) { await Fail(http, state, e); }
        finally { Finish(http, state, start, ok); }
    }

    /// <summary>Failures answered as JSON: all, unless the client has gone or the answer has begun.</summary>
    private static bool Handles(HttpContext http, Exception e) =>
        !http.Response.HasStarted && (e is MlosException or AdminException or JsonException or BadHttpRequestException || !http.RequestAborted.IsCancellationRequested);

    private static Task Fail(HttpContext http, ServerState state, Exception e)
    {
        var (status, message) = Failure(http, state, e);
        return Error(http, state, status, message);
    }

    /// <summary>
    /// The one mapping from a failure to its HTTP code and message, for both front doors. Ours carry
    /// a status and plain words; a body the client framed wrongly is a 400; anything else is a bug
    /// of ours: a 500 that says so, with the exception in the log and not in the answer.
    /// </summary>
    public static (int Status, string Message) Failure(HttpContext http, ServerState state, Exception e)
    {
        switch (e)
        {
            // The protocol's "unavailable": a model there but not loaded (or unloading) may serve
            // later, as gRPC's UNAVAILABLE says; the MLOS routes keep their 409.
            case MlosException { Status: SmiStatus.InvalidState } m when IsOpenInferenceRoute(http.Request.Path)
                                                                        && !http.Request.Path.StartsWithSegments("/v2/repository", StringComparison.Ordinal):
                return (StatusCodes.Status503ServiceUnavailable, m.Message);
            case MlosException m: return (StatusCode(m.Status), m.Message);
            case AdminException a: return (a.Status, a.Message);
            case JsonException j: return (400, $"the request body is not valid JSON: {j.Message}");
            case BadHttpRequestException b:
                return (b.StatusCode, b.StatusCode == 413 ? $"request body larger than {state.Options.MaxBodyBytes >> 20} MB" : b.Message);
            default:
                state.Log.Bug(http, e);
                return (500, "internal error while serving this request (the server log has the details)");
        }
    }

    public static void Finish(HttpContext http, ServerState state, long start, bool ok)
    {
        long elapsed = System.Diagnostics.Stopwatch.GetTimestamp() - start;
        state.Count(ok, elapsed);
        var pattern = (http.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? http.Request.Path.Value ?? "";
        ServerMetrics.Request(pattern, http.Response.StatusCode, (double)elapsed / System.Diagnostics.Stopwatch.Frequency);
        if (ok) state.Log.Served(http, elapsed);
    }

    /// <summary>An authorization failure and its HTTP code.</summary>
    public sealed class AdminException(int status, string message) : Exception(message)
    {
        public int Status { get; } = status;
    }

    /// <summary>The whole request body as an array, for the small admin bodies.</summary>
    public static async Task<byte[]> Body(HttpContext http, ServerState state)
    {
        using var body = await RequestBody.ReadAsync(http, state.Options.MaxBodyBytes);
        return body.Span.ToArray();
    }
}
