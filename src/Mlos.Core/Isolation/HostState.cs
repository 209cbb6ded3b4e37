namespace Mlos.Core.Isolation;

/// <summary>
/// Where an isolated plugin's host process stands, for <c>/plugins</c> and metrics: its pid (the
/// last one, while it is dead), <see cref="State"/> "serving", "restarting" or "down" (died more
/// often than its restart policy allows, or unloaded), how often it was restarted and died, and
/// the last failure with its time.
/// </summary>
public sealed record HostState(int Pid, string State, int Restarts, int Crashes, string? LastFailure, DateTimeOffset? LastFailureAt);
