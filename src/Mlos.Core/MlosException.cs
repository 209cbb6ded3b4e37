using Mlos.Smi.Abi;

namespace Mlos.Core;

/// <summary>A failed core operation: the status a C caller gets and the message it reads.</summary>
public sealed class MlosException(SmiStatus status, string message) : Exception(message)
{
    public SmiStatus Status { get; } = status;

    /// <summary>
    /// The request never reached the plugin: the model was not in a state to take it (unloading,
    /// unregistered). Such a request may be run on the model that took its place.
    /// </summary>
    public bool Refused { get; init; }

    /// <summary>"SMI_ERROR_RUNTIME (-5)" for a status.</summary>
    public static string Describe(SmiStatus status) => SmiStatusNames.Of(status);
}
