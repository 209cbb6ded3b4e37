using System.Diagnostics;
using Mlos.Smi.Abi;

namespace Mlos.Smi.Sdk;

/// <summary>
/// An absolute CLOCK_MONOTONIC time in nanoseconds, as SMI 1.2 passes deadlines; 0 is none.
/// <see cref="Stopwatch"/> reads that clock on Linux, so both sides of the ABI agree on "now".
/// </summary>
public readonly struct SmiDeadline(ulong nanoseconds)
{
    public static readonly SmiDeadline None = default;

    public ulong Nanoseconds { get; } = nanoseconds;
    public bool IsSet => Nanoseconds != 0;

    /// <summary>The monotonic clock now, in nanoseconds.</summary>
    public static ulong Now() => (ulong)(Stopwatch.GetTimestamp() * (1_000_000_000.0 / Stopwatch.Frequency));

    /// <summary>A deadline <paramref name="milliseconds"/> from now; 0 or less gives none.</summary>
    public static SmiDeadline FromNow(int milliseconds) =>
        milliseconds <= 0 ? None : new SmiDeadline(Now() + (ulong)milliseconds * 1_000_000);

    /// <summary>Milliseconds left, 0 when passed; int.MaxValue without a deadline.</summary>
    public int RemainingMilliseconds
    {
        get
        {
            if (!IsSet) return int.MaxValue;
            ulong now = Now();
            return now >= Nanoseconds ? 0 : (int)Math.Min((Nanoseconds - now) / 1_000_000, int.MaxValue - 1);
        }
    }

    public bool Passed => IsSet && Now() >= Nanoseconds;

    public void ThrowIfPassed(string what)
    {
        if (Passed) throw Exceeded(what);
    }

    public static SmiException Exceeded(string what) => new(SmiStatus.Timeout, $"{what}: the request passed its deadline and was stopped");
}
