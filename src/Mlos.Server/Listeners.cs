using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Mlos.Server;

/// <summary>
/// Where mlos_core listens: the HTTP port (REST), the gRPC port (HTTP/2 without TLS, "h2c", as
/// gRPC clients speak it on a trusted network) and an optional unix domain socket serving the
/// REST API to co-located clients. The socket file is made with mode 0660 from the start (the
/// umask is narrowed while Kestrel binds), a stale file left by a killed server is replaced, and
/// one that another live server still answers on is refused.
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
    });

    private static IPAddress Address(ServerOptions options) => IPAddress.Parse(options.Host == "localhost" ? "127.0.0.1" : options.Host);

    /// <summary>Every listener, for the start line and for a failure to bind.</summary>
    public static string Describe(ServerOptions options)
    {
        var parts = new List<string> { $"{options.Host}:{options.Port} (HTTP)" };
        if (options.GrpcPort > 0) parts.Add($"{options.Host}:{options.GrpcPort} (gRPC)");
        if (options.Socket is { } path) parts.Add($"{Path.GetFullPath(path)} (HTTP, unix socket)");
        return string.Join(", ", parts);
    }

    private static bool s_madeSocket;
    private static uint s_umask;

    /// <summary>Before binding: a stale socket file goes, a live one or another kind of file stops the start; new files get no rights for others.</summary>
    public static void PrepareSocket(ServerOptions options)
    {
        if (options.Socket is not { } given) return;
        var path = Path.GetFullPath(given);
        if (File.Exists(path) || Directory.Exists(path))
        {
            if ((File.GetAttributes(path) & FileAttributes.Directory) != 0 || !IsSocket(path))
                throw new IOException($"{path} exists and is not a socket");
            if (Answers(path)) throw new IOException($"another server is listening on {path}");
            File.Delete(path);
        }
        s_umask = umask(0b001_001_111); // 0117: the socket is rw for owner and group only
        s_madeSocket = true;
    }

    /// <summary>After binding: the umask as it was.</summary>
    public static void ShareSocket(ServerOptions options)
    {
        if (options.Socket is null) return;
        umask(s_umask);
    }

    /// <summary>At exit: the socket file this server made.</summary>
    public static void RemoveSocket(ServerOptions options)
    {
        if (options.Socket is not { } path || !s_madeSocket) return;
        try { File.Delete(Path.GetFullPath(path)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>lstat's file type (glibc 2.33+ exports lstat; x86-64 keeps st_mode at byte 24 of struct stat).</summary>
    private static unsafe bool IsSocket(string path)
    {
        byte* stat = stackalloc byte[256];
        if (lstat(path, stat) != 0) return false;
        const uint TypeMask = 0xF000, SocketType = 0xC000;
        return (*(uint*)(stat + 24) & TypeMask) == SocketType;
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

    [LibraryImport("libc", SetLastError = false)]
    private static partial uint umask(uint mask);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int lstat(string path, byte* stat);
}
