using System.Runtime.InteropServices;

namespace Mlos.Core.Isolation.Wire;

/// <summary>
/// The version of this protocol, the first word of the open request: a host from another build
/// (the core and mlos_plugin_host are shipped together, but a PATH or MLOS_PLUGIN_HOST can mix
/// them) refuses to serve instead of misreading every message.
/// </summary>
internal static class WireProtocol
{
    public const uint Version = 1;
}

/// <summary>The status a reply frame carries, as the core passes it on.</summary>
internal static class WireStatus
{
    /// <summary>A host's own failure: an SMI status, RUNTIME for anything else (success included: a failure cannot be one).</summary>
    public static Smi.Abi.SmiStatus OfHostFailure(int status) =>
        status == 0 ? Smi.Abi.SmiStatus.Runtime : Plugins.PluginAnswers.Known((Smi.Abi.SmiStatus)status);
}

/// <summary>What a frame asks for (or answers: a reply carries the op it answers).</summary>
internal enum WireOp : ushort
{
    /// <summary>Core to host, once at start: the plugin to open (its path, the core's id for it, the shared-memory limit).</summary>
    Open = 16,
    /// <summary>Host to core, the answer to <see cref="Open"/>: the plugin opened (its SMI version, capabilities, entries, id) or why not.</summary>
    Ready = 1,
    /// <summary>Core to host on the first channel: serve one more channel (its socket and region attached).</summary>
    Lane = 2,
    Describe = 3,
    Initialize = 4,
    Cleanup = 5,
    Register = 6,
    Unregister = 7,
    Load = 8,
    Unload = 9,
    Allocate = 10,
    Deallocate = 11,
    ModelInfo = 12,
    ModelIo = 13,
    /// <summary>Untyped inference (bytes in, bytes out).</summary>
    Inference = 14,
    /// <summary>Typed inference: infer, infer_with_deadline or infer_selected, as the request says.</summary>
    Infer = 15,
}

[Flags]
internal enum WireFlags : ushort
{
    None = 0,
    /// <summary>The status and message are the host's own (it could not carry out the call), not the plugin's answer.</summary>
    HostFailure = 1,
}

/// <summary>
/// The 24 bytes that cross a channel's socket for each request and each reply: the message
/// itself lies in the channel's shared region at <see cref="Offset"/>. The socket is the doorbell
/// (a blocked read wakes when the peer writes) and the alarm (end of stream when the peer dies).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct WireFrame
{
    public WireOp Op;
    public WireFlags Flags;
    /// <summary>A reply's status: the plugin's smi_status_t, or the host's (<see cref="WireFlags.HostFailure"/>).</summary>
    public int Status;
    public uint Length;
    public uint Offset;
    /// <summary>The region's size as the sender left it: the receiver follows a growth.</summary>
    public ulong RegionSize;

    public const int Size = 24;
}
