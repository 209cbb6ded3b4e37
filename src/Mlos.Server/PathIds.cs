using Microsoft.AspNetCore.Http.Features;

namespace Mlos.Server;

/// <summary>
/// Model ids in request paths, percent-decoded exactly once. Clients encode an id once
/// (<c>ns%2Fname</c>, <c>a%40b</c>); Kestrel has already decoded the path (all but <c>%2F</c>)
/// before routing, so decoding a route value again would decode twice: <c>a%2540b</c> would reach
/// model <c>a@b</c> and <c>a%40b</c> could not be reached at all. The id is taken from the raw
/// request target instead.
/// </summary>
internal static class PathIds
{
    /// <summary>
    /// The id in path segment <paramref name="segment"/> (0-based, after the leading slash; -1
    /// counts from the end) of the raw target; <paramref name="routeValue"/> is Kestrel's decoding
    /// of it, right as it is when the target holds no escape at all.
    /// </summary>
    public static string Segment(HttpContext http, string routeValue, int segment)
    {
        var path = RawPath(http);
        if (path.IndexOf('%') < 0) return routeValue; // nothing was encoded: no allocation on the hot path
        var parts = path.TrimStart('/').Split('/');
        int index = segment >= 0 ? segment : parts.Length + segment;
        return (uint)index < (uint)parts.Length ? Uri.UnescapeDataString(parts[index]) : routeValue;
    }

    /// <summary>
    /// The id between <paramref name="prefix"/> and <paramref name="suffix"/> of the raw path
    /// (the MLOS route <c>/models/{id}/inference</c>, whose id may also hold plain slashes).
    /// </summary>
    public static string? Between(HttpContext http, string prefix, string suffix)
    {
        var path = RawPath(http);
        if (!path.StartsWith(prefix, StringComparison.Ordinal) || !path.EndsWith(suffix, StringComparison.Ordinal)
            || path.Length <= prefix.Length + suffix.Length)
            return null;
        var raw = path.AsSpan(prefix.Length, path.Length - prefix.Length - suffix.Length);
        return raw.IndexOf('%') < 0 ? raw.ToString() : Uri.UnescapeDataString(raw.ToString());
    }

    /// <summary>The raw target's path: without its query, and without scheme and host when a client sent the absolute form.</summary>
    private static ReadOnlySpan<char> RawPathSpan(string target)
    {
        var span = target.AsSpan();
        if (!span.StartsWith("/"))
        {
            int scheme = span.IndexOf("://");
            if (scheme < 0) return span;
            span = span[(scheme + 3)..];
            int slash = span.IndexOf('/');
            span = slash < 0 ? "/" : span[slash..];
        }
        int query = span.IndexOf('?');
        return query < 0 ? span : span[..query];
    }

    private static string RawPath(HttpContext http)
    {
        var target = http.Features.Get<IHttpRequestFeature>()?.RawTarget ?? http.Request.Path.Value ?? "";
        var path = RawPathSpan(target);
        return path.Length == target.Length ? target : path.ToString();
    }
}
