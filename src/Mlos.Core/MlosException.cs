using Mlos.Smi.Abi;

namespace Mlos.Core;

/// <summary>A failed core operation: the status a C caller gets and the message it reads.</summary>
public sealed class MlosException(SmiStatus status, string message) : Exception(message)
{
    public SmiStatus Status { get; } = status;

    /// <summary>"SMI_ERROR_RUNTIME (-5)" for a status.</summary>
    public static string Describe(SmiStatus status) => status switch
    {
        SmiStatus.Success => "SMI_SUCCESS (0)",
        SmiStatus.InvalidParam => "SMI_ERROR_INVALID_PARAM (-1)",
        SmiStatus.OutOfMemory => "SMI_ERROR_OUT_OF_MEMORY (-2)",
        SmiStatus.NotFound => "SMI_ERROR_NOT_FOUND (-3)",
        SmiStatus.NotSupported => "SMI_ERROR_NOT_SUPPORTED (-4)",
        SmiStatus.Runtime => "SMI_ERROR_RUNTIME (-5)",
        SmiStatus.BufferTooSmall => "SMI_ERROR_BUFFER_TOO_SMALL (-6)",
        SmiStatus.InvalidState => "SMI_ERROR_INVALID_STATE (-7)",
        SmiStatus.AlreadyExists => "SMI_ERROR_ALREADY_EXISTS (-8)",
        SmiStatus.VersionMismatch => "SMI_ERROR_VERSION_MISMATCH (-9)",
        SmiStatus.Busy => "SMI_ERROR_BUSY (-10)",
        _ => $"status {(int)status}",
    };
}
