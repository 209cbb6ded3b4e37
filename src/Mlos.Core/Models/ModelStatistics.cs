using System.Collections.Concurrent;
using System.Diagnostics;

namespace Mlos.Core.Models;

/// <summary>
/// A model's cumulative inference statistics, as the Open Inference Protocol's statistics
/// extension (and Triton) reports them: requests that succeeded and failed with their total
/// time, time queued for a batch, time in the plugin, and executions (plugin calls) against
/// inferences, so that batching shows as execution_count &lt; inference_count. Triton's
/// definitions: an inference is a row (a request of 8 rows to a model with a batch dimension
/// counts 8); execution_count and batch_stats count successful executions, batch_stats keyed by
/// an execution's rows; inference_stats count successful requests, each adding the times of the
/// execution that ran it. Counted in the core, so every front door (HTTP, C API) adds to the
/// same numbers. Lock-free counters; a reader sees each one whole, not all of them at one instant.
///
/// A request that is its own execution (no batcher: the C API's echo path is ~150 ns) costs two
/// atomic adds and a store: its counts and times are kept apart from batched ones and the totals
/// are summed when read.
/// </summary>
public sealed class ModelStatistics
{
    // Requests that were their own execution (no queue); rows past one each are counted apart.
    private long _aloneOk, _aloneOkTicks, _aloneFail, _aloneFailTicks, _extraRows;
    // Those of other than one row: in their own buckets, taken out of batch size 1 when read.
    private long _manyRowsAlone, _manyRowsAloneTicks;
    // Requests through the batcher, with the times of the executions that ran them (per request).
    private long _batchedOk, _batchedOkTicks, _batchedFail, _batchedFailTicks, _queueTicks, _batchedRows;
    private long _requestInputTicks, _requestComputeTicks, _requestOutputTicks;
    // The batcher's successful executions (plugin calls); a request alone is one of its own.
    private long _executions, _computeTicks;
    // Requests the core refused before any execution (they do not fit the model's specs).
    private long _refused;
    private long _lastInference;
    /// <summary>Executions per batch size in rows, made at first use; up to <see cref="SmallBatches"/> by index, larger ones in a dictionary.</summary>
    private readonly BatchCounter?[] _small = new BatchCounter?[SmallBatches + 1];
    private readonly ConcurrentDictionary<long, BatchCounter> _large = new();
    private const int SmallBatches = 64;

    private sealed class BatchCounter
    {
        public long Count, Ticks, InputTicks, OutputTicks;
    }

    /// <summary>
    /// A request of <paramref name="rows"/> inferences that ran as its own execution, ending at
    /// <paramref name="end"/> after <paramref name="ticks"/>.
    /// </summary>
    internal void Alone(bool ok, long ticks, long end, long rows = 1)
    {
        if (ok)
        {
            Interlocked.Increment(ref _aloneOk);
            Interlocked.Add(ref _aloneOkTicks, ticks);
            if (rows != 1)
            {
                // Kept apart from the one-row fast path, whose executions are read as batch size 1.
                Interlocked.Add(ref _extraRows, rows - 1);
                var bucket = Bucket(rows);
                Interlocked.Increment(ref bucket.Count);
                Interlocked.Add(ref bucket.Ticks, ticks);
                Interlocked.Increment(ref _manyRowsAlone);
                Interlocked.Add(ref _manyRowsAloneTicks, ticks);
            }
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

    /// <summary>
    /// A request of <paramref name="rows"/> answered through the batcher: <paramref name="totalTicks"/>
    /// from the core taking it, <paramref name="queueTicks"/> of them waiting, and the gather,
    /// plugin call and split of the execution that ran it.
    /// </summary>
    internal void Batched(bool ok, long totalTicks, long queueTicks, long end, long rows, in ExecutionTimes times)
    {
        if (ok)
        {
            Interlocked.Increment(ref _batchedOk);
            Interlocked.Add(ref _batchedOkTicks, totalTicks);
            Interlocked.Add(ref _queueTicks, queueTicks);
            Interlocked.Add(ref _batchedRows, rows);
            Interlocked.Add(ref _requestInputTicks, times.Input);
            Interlocked.Add(ref _requestComputeTicks, times.Compute);
            Interlocked.Add(ref _requestOutputTicks, times.Output);
        }
        else
        {
            Interlocked.Increment(ref _batchedFail);
            Interlocked.Add(ref _batchedFailTicks, totalTicks);
        }
        Volatile.Write(ref _lastInference, end);
    }

    /// <summary>Stopwatch ticks of one execution: gathering a merged batch's inputs, the plugin call, splitting its outputs.</summary>
    internal readonly record struct ExecutionTimes(long Input, long Compute, long Output);

    /// <summary>One successful plugin call of the batcher that ran <paramref name="rows"/> rows together, with its times.</summary>
    internal void Execution(long rows, in ExecutionTimes times)
    {
        Interlocked.Increment(ref _executions);
        Interlocked.Add(ref _computeTicks, times.Compute);
        var bucket = Bucket(rows);
        Interlocked.Increment(ref bucket.Count);
        Interlocked.Add(ref bucket.Ticks, times.Compute);
        if (times.Input != 0) Interlocked.Add(ref bucket.InputTicks, times.Input);
        if (times.Output != 0) Interlocked.Add(ref bucket.OutputTicks, times.Output);
    }

    private BatchCounter Bucket(long size)
    {
        if ((ulong)size > SmallBatches) return _large.GetOrAdd(size, static _ => new BatchCounter());
        return Volatile.Read(ref _small[size]) ?? Interlocked.CompareExchange(ref _small[size], new BatchCounter(), null) ?? _small[size]!;
    }

    /// <summary>A (count, nanoseconds) pair of the protocol.</summary>
    public readonly record struct Duration(long Count, long Nanoseconds);

    /// <summary>One batch size's executions: compute_input, compute_infer and compute_output.</summary>
    public readonly record struct BatchStats(long BatchSize, Duration ComputeInput, Duration ComputeInfer, Duration ComputeOutput);

    /// <summary>
    /// The numbers as they are now. compute_input and compute_output are what the core spends on
    /// tensors around the plugin call: none for a request alone (its tensors reach the plugin in
    /// place), the gather and split of a merged batch.
    /// </summary>
    public readonly record struct Snapshot(
        long LastInferenceMs, long InferenceCount, long ExecutionCount,
        Duration Success, Duration Fail, Duration Queue,
        Duration ComputeInput, Duration ComputeInfer, Duration ComputeOutput,
        IReadOnlyList<BatchStats> Batches);

    public Snapshot Read()
    {
        // Writers count a request alone first and its rows' bucket after: read in the other order,
        // so that the one-row share below is never short.
        long manyRows = Volatile.Read(ref _manyRowsAlone), manyRowsTicks = Volatile.Read(ref _manyRowsAloneTicks);
        long aloneOk = Volatile.Read(ref _aloneOk), aloneFail = Volatile.Read(ref _aloneFail);
        long aloneOkTicks = Volatile.Read(ref _aloneOkTicks), aloneFailTicks = Volatile.Read(ref _aloneFailTicks);
        long batchedOk = Volatile.Read(ref _batchedOk);
        long last = Volatile.Read(ref _lastInference);
        long lastMs = last == 0 ? 0 : DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - (long)Stopwatch.GetElapsedTime(last).TotalMilliseconds;
        var batches = new List<BatchStats>();
        void Add(long size, BatchCounter? b, long count, long ticks)
        {
            if (b is not null)
            {
                count += Volatile.Read(ref b.Count);
                ticks += Volatile.Read(ref b.Ticks);
            }
            if (count <= 0) return;
            long input = b is null ? 0 : Volatile.Read(ref b.InputTicks), output = b is null ? 0 : Volatile.Read(ref b.OutputTicks);
            batches.Add(new BatchStats(size, new Duration(count, Ns(input)), new Duration(count, Ns(ticks)), new Duration(count, Ns(output))));
        }
        // The one-row requests alone are a batch of one each (counted without a bucket).
        long oneRow = Math.Max(0, aloneOk - manyRows), oneRowTicks = Math.Max(0, aloneOkTicks - manyRowsTicks);
        for (int size = 0; size <= SmallBatches; size++)
            Add(size, Volatile.Read(ref _small[size]), size == 1 ? oneRow : 0, size == 1 ? oneRowTicks : 0);
        foreach (var (size, b) in _large.OrderBy(x => x.Key)) Add(size, b, 0, 0);
        long success = aloneOk + batchedOk;
        return new Snapshot(
            lastMs,
            aloneOk + Volatile.Read(ref _extraRows) + Volatile.Read(ref _batchedRows),
            aloneOk + Volatile.Read(ref _executions),
            new Duration(success, Ns(aloneOkTicks + Volatile.Read(ref _batchedOkTicks))),
            new Duration(aloneFail + Volatile.Read(ref _batchedFail) + Volatile.Read(ref _refused),
                Ns(aloneFailTicks + Volatile.Read(ref _batchedFailTicks))),
            new Duration(success, Ns(Volatile.Read(ref _queueTicks))),
            new Duration(success, Ns(Volatile.Read(ref _requestInputTicks))),
            new Duration(success, Ns(aloneOkTicks + Volatile.Read(ref _requestComputeTicks))),
            new Duration(success, Ns(Volatile.Read(ref _requestOutputTicks))),
            batches);
    }

    private static long Ns(long ticks) => (long)(ticks * (1_000_000_000.0 / Stopwatch.Frequency));
}
