using Microsoft.ML.OnnxRuntime;
using Mlos.Smi.Sdk;

namespace Mlos.Plugins.OnnxRuntime;

/// <summary>
/// Run options for one run with a deadline: a timer sets ONNX Runtime's terminate flag when the
/// deadline passes, and the run fails at its next operator boundary instead of running on.
/// </summary>
internal sealed class OnnxDeadline : IDisposable
{
    private readonly Timer _timer;
    private readonly Lock _lock = new();
    private bool _done;

    public OnnxDeadline(SmiDeadline deadline) =>
        _timer = new Timer(static s => ((OnnxDeadline)s!).Fire(), this, deadline.RemainingMilliseconds, Timeout.Infinite);

    /// <summary>
    /// The run's options. Its log level is fatal-only: a run stopped by its terminate flag is
    /// reported as SMI_ERROR_TIMEOUT, and ONNX Runtime would also print it to stderr as an error.
    /// </summary>
    public RunOptions Options { get; } = new() { LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL };

    /// <summary>Whether the flag was set: a failure of the run is then the deadline's.</summary>
    public bool Fired { get; private set; }

    private void Fire()
    {
        lock (_lock)
        {
            if (_done) return; // the run is over and its options are being freed
            Fired = true;
            Options.Terminate = true;
        }
    }

    public void Dispose()
    {
        lock (_lock) _done = true;
        _timer.Dispose();
        Options.Dispose();
    }
}
