using Mlos.Smi.Abi;

namespace Mlos.Smi.Sdk;

/// <summary>
/// A failure with an SMI status. Plugins throw it; the SDK turns it into the returned status
/// and the thread's last-error message. It never crosses the ABI.
/// </summary>
public sealed class SmiException : Exception
{
    public SmiException(SmiStatus status, string message) : base(message) => Status = status;

    public SmiStatus Status { get; }

    /// <summary>Bytes (or elements) the caller must provide, for <see cref="SmiStatus.BufferTooSmall"/>.</summary>
    public ulong RequiredSize { get; init; }

    public static SmiException BufferTooSmall(ulong required, ulong given, string what = "output buffer") =>
        new(SmiStatus.BufferTooSmall, $"{what} too small: {required} bytes needed, {given} given") { RequiredSize = required };

    /// <summary>The status an arbitrary exception maps to at the ABI.</summary>
    public static SmiStatus StatusOf(Exception e) => e switch
    {
        SmiException s => s.Status,
        ArgumentException => SmiStatus.InvalidParam,
        OutOfMemoryException or InsufficientMemoryException => SmiStatus.OutOfMemory,
        KeyNotFoundException or FileNotFoundException or DirectoryNotFoundException => SmiStatus.NotFound,
        NotSupportedException or NotImplementedException => SmiStatus.NotSupported,
        InvalidOperationException or ObjectDisposedException => SmiStatus.InvalidState,
        _ => SmiStatus.Runtime,
    };
}
