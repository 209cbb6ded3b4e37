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
        if ((uint)index >= (uint)parts.Length) throw Mismatch();
        return Checked(parts[index], routeValue);
    }

    /// <summary>
    /// The id between <paramref name="prefix"/> and <paramref name="suffix"/> of the raw path
    /// (the MLOS route <c>/models/{id}/inference</c>, whose id may also hold plain slashes);
    /// null when the path is not of that form. Matched without regard to case, as routing is.
    /// </summary>
    public static string? Between(HttpContext http, string prefix, string suffix)
    {
        var path = RawPath(http);
        if (!path.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) || !path.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)
            || path.Length <= prefix.Length + suffix.Length)
            return null;
        var raw = path.Substring(prefix.Length, path.Length - prefix.Length - suffix.Length);
        if (raw.IndexOf('%') < 0 && raw.IndexOf('.') < 0) return raw;
        var routed = http.Request.Path.Value ?? "";
        return Checked(raw, routed.Length > prefix.Length + suffix.Length ? routed[prefix.Length..^suffix.Length] : "");
    }

    /// <summary>
    /// The raw segment decoded once, after making sure it is the segment routing chose: Kestrel
    /// decodes all but <c>%2F</c> and removes dot segments (<c>%2E%2E</c> included) before routing,
    /// so a raw path that differs from the routed one once decoded the same way names another model.
    /// </summary>
    private static string Checked(string raw, string routed)
    {
        var asKestrel = Uri.UnescapeDataString(raw.Replace("%2F", "%252F", StringComparison.Ordinal).Replace("%2f", "%252f", StringComparison.Ordinal));
        if (asKestrel != routed) throw Mismatch();
        return Uri.UnescapeDataString(raw);
    }

    private static Mlos.Core.MlosException Mismatch() =>
        new(Mlos.Smi.Abi.SmiStatus.InvalidParam, "the request path has dot segments or escapes that change which model it names: encode the model id, and only it");

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
