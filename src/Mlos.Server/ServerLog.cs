using Microsoft.Extensions.Logging;

namespace Mlos.Server;

/// <summary>
/// The server's log: one line per failed request (route, model, status, reason) and per admin
/// action; a line per successful request only at debug level, so a busy server writes nothing
/// for the requests that work.
/// </summary>
internal sealed class ServerLog(ILogger logger)
{
    public ILogger Logger { get; } = logger;

    public void Failed(HttpContext http, int status, string reason)
    {
        var level = status >= 500 ? LogLevel.Error : LogLevel.Information;
        if (!Logger.IsEnabled(level)) return;
        Logger.Log(level, "{Method} {Route} model={Model} -> {Status}: {Reason}",
            http.Request.Method, Route(http), Model(http) ?? "-", status, reason);
    }

    /// <summary>An unexpected exception: the whole of it, for whoever fixes it.</summary>
    public void Bug(HttpContext http, Exception e) =>
        Logger.LogError(e, "{Method} {Path}: unexpected failure", http.Request.Method, http.Request.Path.Value);

    public void Served(HttpContext http, long elapsedTicks)
    {
        if (!Logger.IsEnabled(LogLevel.Debug)) return;
        Logger.LogDebug("{Method} {Route} model={Model} -> {Status} in {Micros} us", http.Request.Method, Route(http), Model(http) ?? "-",
            http.Response.StatusCode, elapsedTicks * 1_000_000 / System.Diagnostics.Stopwatch.Frequency);
    }

    public void Admin(string action) => Logger.LogInformation("admin: {Action}", action);

    public void Warn(string message) => Logger.LogWarning("{Message}", message);

    private static string Route(HttpContext http) =>
        (http.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? http.Request.Path.Value ?? "";

    /// <summary>The model a request named, decoded as its route decodes it (the raw path where that fails).</summary>
    private static string? Model(HttpContext http)
    {
        try { return RoutedModel(http); }
        catch (Mlos.Core.MlosException) { return http.Request.Path.Value; }
    }

    private static string? RoutedModel(HttpContext http)
    {
        var values = http.Request.RouteValues;
        if (values.TryGetValue("name", out var name) && name is string n)
            return PathIds.Segment(http, n, http.Request.Path.StartsWithSegments("/v2/repository") ? 3 : 2);
        if (values.TryGetValue("id", out var id) && id is string)
            return PathIds.Between(http, "/models/", "/inference");
        return null;
    }
}
