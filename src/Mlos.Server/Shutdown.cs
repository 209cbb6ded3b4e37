using System.Diagnostics;
using Mlos.Core;

namespace Mlos.Server;

/// <summary>
/// The end of a SIGTERM: Kestrel has let in-flight requests finish (or cut them at the shutdown
/// timeout); what remains is unloading every model. With hundreds of models that takes seconds,
/// and an orchestrator kills the process at its grace period, so teardown gets only what is left
/// of the timeout; past it the process exits and the system reclaims the rest.
/// </summary>
internal static class Shutdown
{
    public static void TearDown(MlosCore core, long stoppingTimestamp, int timeoutSeconds)
    {
        var started = stoppingTimestamp == 0 ? Stopwatch.GetTimestamp() : stoppingTimestamp;
        var left = TimeSpan.FromSeconds(timeoutSeconds) - Stopwatch.GetElapsedTime(started);
        var teardown = Task.Run(core.Dispose);
        if (left > TimeSpan.Zero && teardown.Wait(left)) return;
        // The console logger writes from a queue that may not drain before exit: this line goes direct.
        Console.Error.WriteLine($"mlos_core: shutdown: unloading models did not finish within --shutdown-timeout-s {timeoutSeconds}; exiting without it");
    }
}
