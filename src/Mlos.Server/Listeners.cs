using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Mlos.Server;

/// <summary>
/// Where mlos_core listens: the HTTP port (REST), the gRPC port (HTTP/2 without TLS, "h2c", as
/// gRPC clients speak it on a trusted network), and optional unix domain sockets for co-located
/// clients: one serving the REST API (HTTP/1.1), one serving gRPC (HTTP/2). Kestrel tells HTTP/2
/// from HTTP/1.1 on a cleartext listener only by being told, so one socket cannot serve both.
/// A socket file gets mode 0660 once bound (before that it has
/// the umask's mode, which under the usual umask gives others no write right, and connecting
/// needs one), a stale file left by a killed server is replaced, and one that another live server
/// still answers on is refused.
/// </summary>
internal static partial class Listeners
{
    public static void Configure(IWebHostBuilder web, ServerOptions options) => web.ConfigureKestrel(k =>
    {
        k.Limits.MaxRequestBodySize = options.MaxBodyBytes;
        k.Limits.MaxConcurrentConnections = options.MaxConnections;
        // HTTP/2's default windows (96 KiB a stream) make a client wait for a round trip every
        // 96 KiB of a large tensor; 1 MiB a stream, 4 MiB a connection bounds what one holds.
        k.Limits.Http2.InitialStreamWindowSize = 1 << 20;
        k.Limits.Http2.InitialConnectionWindowSize = 4 << 20;
        var address = Address(options);
        k.Listen(address, options.Port);
        if (options.GrpcPort > 0) k.Listen(address, options.GrpcPort, l => l.Protocols = HttpProtocols.Http2);
        if (options.Socket is { } path) k.ListenUnixSocket(Path.GetFullPath(path));
        if (options.GrpcSocket is { } grpc) k.ListenUnixSocket(Path.GetFullPath(grpc), l => l.Protocols = HttpProtocols.Http2);
    });

    private static IPAddress Address(ServerOptions options) => IPAddress.Parse(options.Host == "localhost" ? "127.0.0.1" : options.Host);

    /// <summary>Every listener, for the start line and for a failure to bind.</summary>
    public static string Describe(ServerOptions options)
    {
        var parts = new List<string> { $"{options.Host}:{options.Port} (HTTP)" };
        if (options.GrpcPort > 0) parts.Add($"{options.Host}:{options.GrpcPort} (gRPC)");
        if (options.Socket is { } path) parts.Add($"{Path.GetFullPath(path)} (HTTP, unix socket)");
        if (options.GrpcSocket is { } grpc) parts.Add($"{Path.GetFullPath(grpc)} (gRPC, unix socket)");
        return string.Join(", ", parts);
    }

    /// <summary>The socket files asked for, as full paths.</summary>
    private static IEnumerable<string> Sockets(ServerOptions options) =>
        new[] { options.Socket, options.GrpcSocket }.OfType<string>().Select(Path.GetFullPath);

    private static readonly List<string> s_made = [];

    /// <summary>Before binding: a stale socket file goes, a live one or another kind of file stops the start.</summary>
    public static void PrepareSockets(ServerOptions options)
    {
        foreach (var path in Sockets(options))
        {
            if (Exists(path, out bool socket))
            {
                if (!socket) throw new IOException($"{path} exists and is not a socket");
                if (Answers(path)) throw new IOException($"another server is listening on {path}");
                File.Delete(path);
            }
            s_made.Add(path);
        }
    }

    /// <summary>After binding: owner and group may connect, others not (the process-wide umask is left alone).</summary>
    public static void ShareSockets(ServerOptions options)
    {
        if (OperatingSystem.IsWindows()) return;
        foreach (var path in Sockets(options))
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
    }

    /// <summary>At exit: the socket files this server made.</summary>
    public static void RemoveSockets()
    {
        foreach (var path in s_made)
        {
            try { File.Delete(path); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
    }

    /// <summary>
    /// Whether something is at <paramref name="path"/> (a link not followed) and whether it is a
    /// socket: statx's layout is the same on every architecture (stx_mode, 16 bits at byte 28).
    /// </summary>
    private static unsafe bool Exists(string path, out bool socket)
    {
        byte* buffer = stackalloc byte[256];
        const int AtFdCwd = -100, AtSymlinkNoFollow = 0x100, StatxType = 1;
        socket = false;
        if (statx(AtFdCwd, path, AtSymlinkNoFollow, StatxType, buffer) != 0) return false;
        const ushort TypeMask = 0xF000, SocketType = 0xC000;
        socket = (*(ushort*)(buffer + 28) & TypeMask) == SocketType;
        return true;
    }

    private static bool Answers(string path)
    {
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            s.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException) { return false; }
    }

    [LibraryImport("libc.so.6", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int statx(int dirfd, string path, int flags, uint mask, byte* buffer);
}
