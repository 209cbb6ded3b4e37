using System.Collections.Concurrent;
using System.Diagnostics;

namespace Mlos.Core.Models;

/// <summary>
/// A model's cumulative inference statistics, as the Open Inference Protocol's statistics
/// extension (and Triton) reports them: requests that succeeded and failed with their total
/// time, time queued for a batch, time in the plugin, and executions (plugin calls) against
/// inferences, so that batching shows as execution_count &lt; inference_count. As in Triton an
/// inference is a row: a request of 8 rows to a model that batches along dim 0 counts 8, and
/// batch_stats are keyed by an execution's rows. Counted in the core, so every front door
/// (HTTP, C API) adds to the same numbers. Lock-free counters; a reader sees each one whole,
/// not all of them at one instant.
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
    // Requests through the batcher, and the executions (plugin calls) that ran them.
    private long _batchedOk, _batchedOkTicks, _batchedFail, _batchedFailTicks, _queueTicks, _batchedRows;
    private long _executions, _computeTicks;
    // A merged batch's input gather and output split (compute_input, compute_output).
    private long _inputTicks, _outputTicks;
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
        }
        else
        {
            Interlocked.Increment(ref _aloneFail);
            Interlocked.Add(ref _aloneFailTicks, ticks);
        }
        if (rows != 1)
        {
            // Kept apart from the one-row fast path: its executions are read as batch size 1.
            if (ok) Interlocked.Add(ref _extraRows, rows - 1);
            var bucket = Bucket(rows);
            Interlocked.Increment(ref bucket.Count);
            Interlocked.Add(ref bucket.Ticks, ticks);
            Interlocked.Increment(ref _manyRowsAlone);
            Interlocked.Add(ref _manyRowsAloneTicks, ticks);
        }
        Volatile.Write(ref _lastInference, end); // a monotonic stamp; wall time only when read
    }

    /// <summary>A request refused by the core's check: a failure, of no time, and no execution.</summary>
    internal void Refused() => Interlocked.Increment(ref _refused);

    /// <summary>
    /// A request of <paramref name="rows"/> answered through the batcher: <paramref name="totalTicks"/>
    /// from the core taking it, <paramref name="queueTicks"/> of them waiting.
    /// </summary>
    internal void Batched(bool ok, long totalTicks, long queueTicks, long end, long rows)
    {
        if (ok)
        {
            Interlocked.Increment(ref _batchedOk);
            Interlocked.Add(ref _batchedOkTicks, totalTicks);
            Interlocked.Add(ref _queueTicks, queueTicks);
            Interlocked.Add(ref _batchedRows, rows);
        }
        else
        {
            Interlocked.Increment(ref _batchedFail);
            Interlocked.Add(ref _batchedFailTicks, totalTicks);
        }
        Volatile.Write(ref _lastInference, end);
    }

    /// <summary>One plugin call of the batcher that ran <paramref name="rows"/> rows together in <paramref name="ticks"/>.</summary>
    internal void Execution(long rows, long ticks)
    {
        Interlocked.Increment(ref _executions);
        Interlocked.Add(ref _computeTicks, ticks);
        var bucket = Bucket(rows);
        Interlocked.Increment(ref bucket.Count);
        Interlocked.Add(ref bucket.Ticks, ticks);
    }

    /// <summary>A merged batch of <paramref name="rows"/>: <paramref name="ticks"/> gathering its requests' inputs into one set (compute_input).</summary>
    internal void InputsGathered(long rows, long ticks)
    {
        Interlocked.Add(ref _inputTicks, ticks);
        Interlocked.Add(ref Bucket(rows).InputTicks, ticks);
    }

    /// <summary>A merged batch of <paramref name="rows"/>: <paramref name="ticks"/> handing each request its rows of the outputs (compute_output).</summary>
    internal void OutputsSplit(long rows, long ticks)
    {
        Interlocked.Add(ref _outputTicks, ticks);
        Interlocked.Add(ref Bucket(rows).OutputTicks, ticks);
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
    /// The numbers as they are now. compute_input and compute_output count every execution; their
    /// time is what the core spends on tensors around the plugin call, which is none for a request
    /// alone (its tensors reach the plugin in place) and the gather and split of a merged batch.
    /// </summary>
    public readonly record struct Snapshot(
        long LastInferenceMs, long InferenceCount, long ExecutionCount,
        Duration Success, Duration Fail, Duration Queue,
        Duration ComputeInput, Duration ComputeInfer, Duration ComputeOutput,
        IReadOnlyList<BatchStats> Batches);

    public Snapshot Read()
    {
        long aloneOk = Volatile.Read(ref _aloneOk), aloneFail = Volatile.Read(ref _aloneFail);
        long aloneOkTicks = Volatile.Read(ref _aloneOkTicks), aloneFailTicks = Volatile.Read(ref _aloneFailTicks);
        long batchedOk = Volatile.Read(ref _batchedOk);
        long alone = aloneOk + aloneFail, aloneTicks = aloneOkTicks + aloneFailTicks;
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
        long oneRow = alone - Volatile.Read(ref _manyRowsAlone), oneRowTicks = aloneTicks - Volatile.Read(ref _manyRowsAloneTicks);
        for (int size = 0; size <= SmallBatches; size++)
            Add(size, Volatile.Read(ref _small[size]), size == 1 ? oneRow : 0, size == 1 ? oneRowTicks : 0);
        foreach (var (size, b) in _large.OrderBy(x => x.Key)) Add(size, b, 0, 0);
        long success = aloneOk + batchedOk, executions = alone + Volatile.Read(ref _executions);
        return new Snapshot(
            lastMs,
            aloneOk + Volatile.Read(ref _extraRows) + Volatile.Read(ref _batchedRows),
            executions,
            new Duration(success, Ns(aloneOkTicks + Volatile.Read(ref _batchedOkTicks))),
            new Duration(aloneFail + Volatile.Read(ref _batchedFail) + Volatile.Read(ref _refused),
                Ns(aloneFailTicks + Volatile.Read(ref _batchedFailTicks))),
            new Duration(success, Ns(Volatile.Read(ref _queueTicks))),
            new Duration(executions, Ns(Volatile.Read(ref _inputTicks))),
            new Duration(executions, Ns(aloneTicks + Volatile.Read(ref _computeTicks))),
            new Duration(executions, Ns(Volatile.Read(ref _outputTicks))),
            batches);
    }

    private static long Ns(long ticks) => (long)(ticks * (1_000_000_000.0 / Stopwatch.Frequency));
}
