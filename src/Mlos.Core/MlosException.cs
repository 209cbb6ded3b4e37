using Mlos.Smi.Abi;

namespace Mlos.Core;

/// <summary>A failed core operation: the status a C caller gets and the message it reads.</summary>
public sealed class MlosException(SmiStatus status, string message) : Exception(message)
{
    public SmiStatus Status { get; } = status;

    /// <summary>"SMI_ERROR_RUNTIME (-5)" for a status.</summary>
    public static string Describe(SmiStatus status) => SmiStatusNames.Of(status);
}
