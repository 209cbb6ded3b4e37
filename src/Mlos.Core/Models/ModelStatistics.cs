using System.Collections.Concurrent;
using System.Diagnostics;

namespace Mlos.Core.Models;

/// <summary>
/// A model's cumulative inference statistics, as the Open Inference Protocol's statistics
/// extension (and Triton) reports them: requests that succeeded and failed with their total
/// time, time queued for a batch, time in the plugin, and executions (plugin calls) against
/// inferences (requests), so that batching shows as execution_count &lt; inference_count. Counted
/// in the core, so every front door (HTTP, C API) adds to the same numbers. Lock-free counters;
/// a reader sees each one whole, not all of them at one instant.
/// </summary>
public sealed class ModelStatistics
{
    private long _success, _successTicks, _fail, _failTicks, _queued, _queueTicks;
    private long _executions, _computeTicks, _lastInference;
    /// <summary>Per batch size, made at its first use; sizes up to <see cref="SmallBatches"/> by index (the hot path), larger ones in a dictionary.</summary>
    private readonly BatchCounter?[] _small = new BatchCounter?[SmallBatches + 1];
    private readonly ConcurrentDictionary<int, BatchCounter> _large = new();
    private const int SmallBatches = 64;

    private sealed class BatchCounter
    {
        public long Count, Ticks;
    }

    /// <summary>One request answered: <paramref name="totalTicks"/> from the core taking it; <paramref name="queueTicks"/> waiting for its batch (0 unbatched).</summary>
    internal void Request(bool ok, long totalTicks, long queueTicks)
    {
        if (ok)
        {
            Interlocked.Increment(ref _success);
            Interlocked.Add(ref _successTicks, totalTicks);
            Interlocked.Increment(ref _queued);
            Interlocked.Add(ref _queueTicks, queueTicks);
        }
        else
        {
            Interlocked.Increment(ref _fail);
            Interlocked.Add(ref _failTicks, totalTicks);
        }
        Volatile.Write(ref _lastInference, Stopwatch.GetTimestamp()); // a monotonic stamp; wall time only when read
    }

    /// <summary>An unbatched request: one execution of one request, both from the same clock reading.</summary>
    internal void RequestAndExecution(bool ok, long ticks)
    {
        Execution(1, ticks);
        Request(ok, ticks, 0);
    }

    /// <summary>One plugin call that ran <paramref name="requests"/> requests together in <paramref name="ticks"/>.</summary>
    internal void Execution(int requests, long ticks)
    {
        Interlocked.Increment(ref _executions);
        Interlocked.Add(ref _computeTicks, ticks);
        var bucket = Bucket(requests);
        Interlocked.Increment(ref bucket.Count);
        Interlocked.Add(ref bucket.Ticks, ticks);
    }

    private BatchCounter Bucket(int size)
    {
        if ((uint)size > SmallBatches) return _large.GetOrAdd(size, static _ => new BatchCounter());
        return Volatile.Read(ref _small[size]) ?? Interlocked.CompareExchange(ref _small[size], new BatchCounter(), null) ?? _small[size]!;
    }

    /// <summary>A (count, nanoseconds) pair of the protocol.</summary>
    public readonly record struct Duration(long Count, long Nanoseconds);

    /// <summary>The numbers as they are now.</summary>
    public readonly record struct Snapshot(
        long LastInferenceMs, long InferenceCount, long ExecutionCount,
        Duration Success, Duration Fail, Duration Queue, Duration ComputeInfer,
        IReadOnlyList<(int BatchSize, Duration ComputeInfer)> Batches);

    public Snapshot Read()
    {
        long success = Volatile.Read(ref _success);
        long last = Volatile.Read(ref _lastInference);
        long lastMs = last == 0 ? 0 : DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - (long)Stopwatch.GetElapsedTime(last).TotalMilliseconds;
        var batches = new List<(int, Duration)>();
        for (int size = 0; size <= SmallBatches; size++)
            if (Volatile.Read(ref _small[size]) is { } b) batches.Add((size, new Duration(Volatile.Read(ref b.Count), Ns(Volatile.Read(ref b.Ticks)))));
        foreach (var (size, b) in _large.OrderBy(x => x.Key))
            batches.Add((size, new Duration(Volatile.Read(ref b.Count), Ns(Volatile.Read(ref b.Ticks)))));
        return new Snapshot(
            lastMs,
            success,
            Volatile.Read(ref _executions),
            new Duration(success, Ns(Volatile.Read(ref _successTicks))),
            new Duration(Volatile.Read(ref _fail), Ns(Volatile.Read(ref _failTicks))),
            new Duration(Volatile.Read(ref _queued), Ns(Volatile.Read(ref _queueTicks))),
            new Duration(Volatile.Read(ref _executions), Ns(Volatile.Read(ref _computeTicks))),
            batches);
    }

    private static long Ns(long ticks) => (long)(ticks * (1_000_000_000.0 / Stopwatch.Frequency));
}
