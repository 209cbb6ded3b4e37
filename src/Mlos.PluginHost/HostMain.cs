using Mlos.Core;
using Mlos.Core.Isolation;
using Mlos.Core.Isolation.Interop;
using Mlos.Core.Isolation.Wire;
using Mlos.Core.Plugins;
using Mlos.Smi.Abi;

namespace Mlos.PluginHost;

/// <summary>The host's life: open the plugin the core names, say whether it opened, serve channels until the core goes.</summary>
internal static unsafe class HostMain
{
    private const int ControlSocket = 3, ControlRegion = 4;

    /// <summary>
    /// Stack of a thread that runs plugin calls: frameworks (libtorch, CPython) recurse deeply. As
    /// much as a native thread gets by default; memory_limit_mb counts it (a private mapping).
    /// </summary>
    private const int CallStackBytes = 8 << 20;

    public static int Run(string[] args)
    {
        if (args.Length != 0 || !IsSocket(ControlSocket))
        {
            Console.Error.WriteLine("mlos_plugin_host is started by mlos_core (or libmlos_core) for a plugin with \"isolation\": \"process\"; it takes no arguments");
            return 2;
        }
        // A program the plugin runs must not inherit the channel (it would outlive this host on it).
        UnixSocket.SetCloseOnExec(ControlSocket);
        UnixSocket.SetCloseOnExec(ControlRegion);
        using var control = new WireChannel(ControlSocket, SharedRegion.Open(ControlRegion, SharedRegion.InitialSize));
        if (!control.Receive(out var open) || open.Op != WireOp.Open) return 1; // the core went before it asked

        var request = control.Reader(open);
        if (request.U32() is var version and not WireProtocol.Version)
        {
            var w = new WireWriter(control.Region, Align(open.Offset + (ulong)open.Length));
            w.Text($"this mlos_plugin_host speaks protocol {WireProtocol.Version}, the core {version}: use the one built with it");
            control.Send(WireOp.Ready, w.Start, w.Length, (int)SmiStatus.VersionMismatch, WireFlags.HostFailure);
            return WaitForCoreToGo(control);
        }
        var path = request.Text(out int pathLength);
        var pluginId = request.String() ?? "";
        ulong limit = request.U64();
        ulong memoryLimit = request.U64();
        var served = Open(control, path, pathLength, pluginId, open, memoryLimit);
        if (served is null) return WaitForCoreToGo(control);

        // Every later frame on the first channel hands over one more channel.
        int number = 0;
        while (true)
        {
            WireFrame frame;
            if (!UnixSocket.ReceiveWithFds(control.Socket, &frame, WireFrame.Size, out int socket, out int region)) break;
            WireChannel lane;
            try { lane = new WireChannel(socket, SharedRegion.Open(region, limit), WireSide.Host); }
            catch (MlosException e)
            {
                Console.Error.WriteLine($"mlos_plugin_host ({pluginId}): {e.Message}");
                UnixSocket.Close(socket);
                UnixSocket.Close(region);
                continue;
            }
            var thread = new Thread(() => served.Serve(lane), CallStackBytes) { IsBackground = true, Name = $"smi-call-{number++}" };
            thread.Start();
        }
        return 0; // the core is gone: so are this host's reasons to run (background threads end with it)
    }

    /// <summary>Opens the plugin and answers the core's open request with its description, or why it did not open.</summary>
    private static HostCalls? Open(WireChannel control, byte* path, int pathLength, string pluginId, in WireFrame open, ulong memoryLimit)
    {
        var w = new WireWriter(control.Region, Align(open.Offset + (ulong)open.Length));
        try
        {
            // Before the plugin's code runs (its static initialisers allocate too).
            if (memoryLimit > 0 && Rlimit.LimitData(memoryLimit) is var errno and not 0)
                throw new MlosException(SmiStatus.Runtime, $"cannot limit the plugin host's memory to {memoryLimit >> 20} MiB (errno {errno})");
            var library = PluginLibrary.Open(path == null ? null : NativePath.From(new ReadOnlySpan<byte>(path, pathLength)));
            var boundary = new InProcessBoundary(library);
            w.Text((string?)null); // no error
            w.U32(boundary.SmiVersion);
            w.U64((ulong)boundary.Capabilities);
            w.U32((uint)boundary.Entries);
            w.Text(boundary.NativeId);
            w.Text(library.Path.Text);
            control.Send(WireOp.Ready, w.Start, w.Length);
            return new HostCalls(boundary, pluginId.Length > 0 ? pluginId : boundary.NativeId);
        }
        catch (MlosException e)
        {
            w = new WireWriter(control.Region, w.Start);
            w.Text(e.Message);
            control.Send(WireOp.Ready, w.Start, w.Length, (int)e.Status, WireFlags.HostFailure);
            return null;
        }
    }

    private static int WaitForCoreToGo(WireChannel control)
    {
        while (control.Receive(out _)) { }
        return 0;
    }

    public static ulong Align(ulong offset) => (offset + 63) & ~63UL;

    private static bool IsSocket(int fd)
    {
        var proc = System.Text.Encoding.ASCII.GetBytes($"/proc/self/fd/{fd}\0");
        return Mlos.Smi.Interop.FileKind.Of(proc) == Mlos.Smi.Interop.FileKind.Kind.Socket;
    }
}
