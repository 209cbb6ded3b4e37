using System.Net;
using static Mlos.Server.Responses;

namespace Mlos.Server;

/// <summary>
/// Who may call the mutating routes (register, load, unload). A browser on the operator's machine
/// can reach a loopback server too, so without a token the server must not trust that a request
/// came from a local program: a body must come as <c>Content-Type: application/json</c> (a
/// cross-site page cannot send that without a CORS preflight, which this server never grants), refuses a foreign
/// <c>Origin</c> (CSRF) and a <c>Host</c> that is not a loopback name (DNS rebinding). With
/// <c>--admin-token</c> the bearer token decides; the content type is required either way.
/// </summary>
internal static class AdminGate
{
    public static void Require(HttpContext http, ServerState state)
    {
        var request = http.Request;
        // A request without a body (load, unload from curl) has no content to type; Origin and Host still apply.
        bool hasBody = request.ContentLength > 0 || request.Headers.TransferEncoding.Count > 0;
        if (hasBody && !IsJson(request.ContentType))
            throw new AdminException(415, $"this route takes Content-Type: application/json, not {(string.IsNullOrEmpty(request.ContentType) ? "none" : request.ContentType)}");
        RequireCaller(http, state);
    }

    /// <summary>
    /// The rules of <see cref="Require"/> but the content type's, for routes whose clients send
    /// bodies untyped (Triton's shared-memory register): the token, or a loopback Host and a local
    /// Origin; and a started server.
    /// </summary>
    public static void RequireCaller(HttpContext http, ServerState state)
    {
        var request = http.Request;
        if (state.Options.NoAdmin)
            throw new AdminException(403, "admin routes are off (--no-admin): this server serves the models it started with");
        if (state.Options.AdminToken is { } token)
        {
            RequireToken(request, token);
            return;
        }
        if (!IsLoopbackHost(request.Host.Host))
            throw new AdminException(403, $"Host '{request.Host}' is not this loopback server's name: without --admin-token, admin routes answer only to localhost, 127.0.0.1 and [::1]");
        var origin = request.Headers.Origin.ToString();
        if (origin.Length > 0 && !(Uri.TryCreate(origin, UriKind.Absolute, out var uri) && IsLoopbackHost(uri.Host)))
            throw new AdminException(403, $"Origin '{origin}' is not local: without --admin-token, admin routes refuse requests from web pages of other sites");
        // While the start-up models load, a registration could take one of their ids and fail the start.
        if (!state.Started)
            throw new AdminException(503, "the server is still loading its start-up models (see /v2/health/ready); try again shortly");
    }

    /// <summary>No credentials: 401; wrong ones: 403. The scheme is case-insensitive (RFC 7235); the comparison takes the same time whatever the token.</summary>
    private static void RequireToken(HttpRequest request, string token)
    {
        var header = request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            throw new AdminException(401, "this route needs \"Authorization: Bearer <admin token>\"");
        var given = System.Text.Encoding.UTF8.GetBytes(header["Bearer ".Length..].Trim());
        if (!System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(given, System.Text.Encoding.UTF8.GetBytes(token)))
            throw new AdminException(403, "the admin token is not valid");
    }

    private static bool IsJson(string? contentType)
    {
        if (contentType is null) return false;
        int semicolon = contentType.IndexOf(';');
        var media = (semicolon < 0 ? contentType : contentType[..semicolon]).Trim();
        return media.Equals("application/json", StringComparison.OrdinalIgnoreCase);
    }

    private static bool IsLoopbackHost(string host)
    {
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase)) return true;
        var bare = host.StartsWith('[') && host.EndsWith(']') ? host[1..^1] : host;
        return IPAddress.TryParse(bare, out var address) && IPAddress.IsLoopback(address);
    }
}
