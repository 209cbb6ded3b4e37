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
///
/// A request that is its own execution (no batcher: the C API's echo path is ~150 ns) costs two
/// atomic adds and a store: its counts and times are kept apart from batched ones and the totals
/// are summed when read.
/// </summary>
public sealed class ModelStatistics
{
    // Requests that were their own execution (batch size 1, no queue).
    private long _aloneOk, _aloneOkTicks, _aloneFail, _aloneFailTicks;
    // Requests through the batcher, and the executions (plugin calls) that ran them.
    private long _batchedOk, _batchedOkTicks, _batchedFail, _batchedFailTicks, _queueTicks;
    private long _executions, _computeTicks;
    // Requests the core refused before any execution (they do not fit the model's specs).
    private long _refused;
    private long _lastInference;
    /// <summary>Batched executions per batch size, made at first use; up to <see cref="SmallBatches"/> by index, larger ones in a dictionary.</summary>
    private readonly BatchCounter?[] _small = new BatchCounter?[SmallBatches + 1];
    private readonly ConcurrentDictionary<int, BatchCounter> _large = new();
    private const int SmallBatches = 64;

    private sealed class BatchCounter
    {
        public long Count, Ticks;
    }

    /// <summary>A request that ran as its own execution, ending at <paramref name="end"/> after <paramref name="ticks"/>.</summary>
    internal void Alone(bool ok, long ticks, long end)
    {
        if (ok)
        {
            Interlocked.Increment(ref _aloneOk);
            Interlocked.Add(ref _aloneOkTicks, ticks);
        }
        else
        {
            Interlocked.Increment(ref _aloneFail);
            Interlocked.Add(ref _aloneFailTicks, ticks);
        }
        Volatile.Write(ref _lastInference, end); // a monotonic stamp; wall time only when read
    }

    /// <summary>A request refused by the core's check: a failure, of no time, and no execution.</summary>
    internal void Refused() => Interlocked.Increment(ref _refused);

    /// <summary>A request answered through the batcher: <paramref name="totalTicks"/> from the core taking it, <paramref name="queueTicks"/> of them waiting.</summary>
    internal void Batched(bool ok, long totalTicks, long queueTicks, long end)
    {
        if (ok)
        {
            Interlocked.Increment(ref _batchedOk);
            Interlocked.Add(ref _batchedOkTicks, totalTicks);
            Interlocked.Add(ref _queueTicks, queueTicks);
        }
        else
        {
            Interlocked.Increment(ref _batchedFail);
            Interlocked.Add(ref _batchedFailTicks, totalTicks);
        }
        Volatile.Write(ref _lastInference, end);
    }

    /// <summary>One plugin call of the batcher that ran <paramref name="requests"/> requests together in <paramref name="ticks"/>.</summary>
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
        IReadOnlyList<(int BatchSize, Duration ComputeInfer)> Batches)
    {
        /// <summary>Tensors reach plugins in place: input and output handling is counted once per execution and takes no time of its own.</summary>
        public Duration ComputeInput => InPlace(ComputeInfer);
        public Duration ComputeOutput => InPlace(ComputeInfer);

        /// <summary>compute_input / compute_output of executions that took <paramref name="infer"/>: their count, 0 ns.</summary>
        public static Duration InPlace(Duration infer) => new(infer.Count, 0);
    }

    public Snapshot Read()
    {
        long aloneOk = Volatile.Read(ref _aloneOk), aloneFail = Volatile.Read(ref _aloneFail);
        long aloneOkTicks = Volatile.Read(ref _aloneOkTicks), aloneFailTicks = Volatile.Read(ref _aloneFailTicks);
        long batchedOk = Volatile.Read(ref _batchedOk);
        long alone = aloneOk + aloneFail, aloneTicks = aloneOkTicks + aloneFailTicks;
        long last = Volatile.Read(ref _lastInference);
        long lastMs = last == 0 ? 0 : DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - (long)Stopwatch.GetElapsedTime(last).TotalMilliseconds;
        var batches = new List<(int, Duration)>();
        for (int size = 0; size <= SmallBatches; size++)
        {
            var b = Volatile.Read(ref _small[size]);
            long count = b is null ? 0 : Volatile.Read(ref b.Count), ticks = b is null ? 0 : Volatile.Read(ref b.Ticks);
            if (size == 1) { count += alone; ticks += aloneTicks; } // a request alone is a batch of one
            if (count > 0) batches.Add((size, new Duration(count, Ns(ticks))));
        }
        foreach (var (size, b) in _large.OrderBy(x => x.Key))
            batches.Add((size, new Duration(Volatile.Read(ref b.Count), Ns(Volatile.Read(ref b.Ticks)))));
        long success = aloneOk + batchedOk, executions = alone + Volatile.Read(ref _executions);
        return new Snapshot(
            lastMs,
            success,
            executions,
            new Duration(success, Ns(aloneOkTicks + Volatile.Read(ref _batchedOkTicks))),
            new Duration(aloneFail + Volatile.Read(ref _batchedFail) + Volatile.Read(ref _refused),
                Ns(aloneFailTicks + Volatile.Read(ref _batchedFailTicks))),
            new Duration(success, Ns(Volatile.Read(ref _queueTicks))),
            new Duration(executions, Ns(aloneTicks + Volatile.Read(ref _computeTicks))),
            batches);
    }

    private static long Ns(long ticks) => (long)(ticks * (1_000_000_000.0 / Stopwatch.Frequency));
}
