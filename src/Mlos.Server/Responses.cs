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
        using (var w = new Utf8JsonWriter(buffer))
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

    /// <summary><c>{"status":"error","message":…}</c> with the HTTP code the failure maps to.</summary>
    public static Task Error(HttpContext http, int status, string message) => Json(http, status, w =>
    {
        w.WriteString("status", "error");
        w.WriteString("message", message);
    });

    public static int StatusCode(SmiStatus status) => status switch
    {
        SmiStatus.InvalidParam or SmiStatus.BufferTooSmall => StatusCodes.Status400BadRequest,
        SmiStatus.NotFound => StatusCodes.Status404NotFound,
        SmiStatus.AlreadyExists => StatusCodes.Status409Conflict,
        SmiStatus.InvalidState => StatusCodes.Status409Conflict,
        SmiStatus.NotSupported => StatusCodes.Status501NotImplemented,
        SmiStatus.Busy => StatusCodes.Status503ServiceUnavailable,
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

    /// <summary>Failures answered as JSON: all of ours; anything else unless the client has gone.</summary>
    private static bool Handles(HttpContext http, Exception e) =>
        e is MlosException or AdminException or JsonException or BadHttpRequestException || !http.RequestAborted.IsCancellationRequested;

    private static Task Fail(HttpContext http, ServerState state, Exception e) => e switch
    {
        MlosException m => Error(http, StatusCode(m.Status), m.Message),
        AdminException a => Error(http, a.Status, a.Message),
        JsonException j => Error(http, 400, $"the request body is not valid JSON: {j.Message}"),
        BadHttpRequestException b => Error(http, b.StatusCode, b.StatusCode == 413 ? $"request body larger than {state.Options.MaxBodyBytes >> 20} MB" : b.Message),
        _ => Error(http, 500, $"{e.GetType().Name}: {e.Message}"),
    };

    private static void Finish(HttpContext http, ServerState state, long start, bool ok)
    {
        long elapsed = System.Diagnostics.Stopwatch.GetTimestamp() - start;
        state.Count(ok, elapsed);
        var pattern = (http.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? http.Request.Path.Value ?? "";
        ServerMetrics.Request(pattern, http.Response.StatusCode, (double)elapsed / System.Diagnostics.Stopwatch.Frequency);
    }

    /// <summary>
    /// Mutating routes with --admin-token set: no credentials answers 401, wrong ones 403. The
    /// comparison takes the same time whatever the token.
    /// </summary>
    public static void RequireAdmin(HttpContext http, ServerState state)
    {
        if (state.Options.AdminToken is not { } token) return;
        var header = http.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.Ordinal))
            throw new AdminException(401, "this route needs \"Authorization: Bearer <admin token>\"");
        var given = System.Text.Encoding.UTF8.GetBytes(header["Bearer ".Length..]);
        if (!System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(given, System.Text.Encoding.UTF8.GetBytes(token)))
            throw new AdminException(403, "the admin token is not valid");
    }

    /// <summary>An authorization failure and its HTTP code.</summary>
    public sealed class AdminException(int status, string message) : Exception(message)
    {
        public int Status { get; } = status;
    }

    /// <summary>The whole request body (bounded by Kestrel's body size limit).</summary>
    public static async Task<byte[]> Body(HttpContext http)
    {
        using var ms = new MemoryStream();
        await http.Request.Body.CopyToAsync(ms, http.RequestAborted);
        return ms.ToArray();
    }
}
