using System.Diagnostics;
using Mlos.Core.Models;
using Mlos.Smi.Abi;

namespace Mlos.Core.Batching;

/// <summary>
/// Triton-style dynamic batching for one model. Callers queue typed requests and block; one
/// scheduler thread per model takes the oldest request, waits until enough compatible ones
/// (same input names, dtypes and dims after the first) hold <c>max_batch_size</c> rows or the
/// oldest has waited <c>max_queue_delay_us</c>, concatenates them along dim 0, runs the plugin's
/// typed infer once and cuts the outputs back per request. Requests of another signature wait
/// for their own batch: shapes never mix.
///
/// A request fails only itself: when a merged batch fails in the plugin, its requests are run one
/// by one so that each gets its own verdict; too-small output buffers fail their own request.
/// </summary>
internal sealed unsafe class DynamicBatcher
{
    private readonly Model _model;
    private readonly BatchingOptions _options;
    private readonly long _delayTicks;
    private readonly object _lock = new();
    private readonly List<BatchRequest> _queue = new();
    private readonly List<BatchRequest> _batch = new();
    private readonly BatchAssembler _assembler = new();
    private readonly Thread _scheduler;
    private bool _stopping;
    private long _batches, _requests;

    public DynamicBatcher(Model model, BatchingOptions options)
    {
        _model = model;
        _options = options;
        _delayTicks = options.MaxQueueDelayMicroseconds * Stopwatch.Frequency / 1_000_000;
        _scheduler = new Thread(Schedule) { IsBackground = true, Name = $"mlos-batch:{model.Id}" };
        _scheduler.Start();
    }

    public BatchingOptions Options => _options;
    /// <summary>Batches run so far and the requests they held (their ratio is the mean batch size).</summary>
    public (long Batches, long Requests) Counts => (Interlocked.Read(ref _batches), Interlocked.Read(ref _requests));

    /// <summary>Typed inference through the queue; requests that cannot merge run at once on the caller's thread.</summary>
    public InferTiming Infer(SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs, ulong deadline)
    {
        var r = BatchRequest.Mine;
        if (!r.TryBind(inputs, numInputs, outputs, numOutputs, _options.MaxBatchSize, deadline))
        {
            RunAlone(inputs, numInputs, outputs, numOutputs, deadline);
            return new InferTiming(0, 1);
        }
        r.Done.Reset();
        Enqueue(r);
        r.Done.Wait();
        if (r.Failure is { } failure) throw failure;
        return r.Timing;
    }

    /// <summary>
    /// Typed inference through the queue without blocking a thread while the batch forms: the
    /// caller's tensors (and <paramref name="numOutputs"/>) must stay valid until the task completes.
    /// Requests that cannot merge run at once, synchronously.
    /// </summary>
    public ValueTask<InferTiming> InferAsync(SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs, ulong deadline)
    {
        var r = BatchRequest.RentAsync();
        if (!r.TryBind(inputs, numInputs, outputs, numOutputs, _options.MaxBatchSize, deadline))
        {
            r.Recycle();
            RunAlone(inputs, numInputs, outputs, numOutputs, deadline);
            return new ValueTask<InferTiming>(new InferTiming(0, 1));
        }
        try { Enqueue(r); }
        catch
        {
            r.Recycle();
            throw;
        }
        return new ValueTask<InferTiming>(r, r.Version);
    }

    /// <summary>Queues a bound request and wakes the scheduler; BUSY once unloading has begun.</summary>
    private void Enqueue(BatchRequest r)
    {
        r.Enqueued = Stopwatch.GetTimestamp();
        lock (_lock)
        {
            if (_stopping) throw new MlosException(SmiStatus.Busy, $"model '{_model.Id}' is unloading");
            _queue.Add(r);
            Monitor.Pulse(_lock);
        }
    }

    private void RunAlone(SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs, ulong deadline)
    {
        var call = new InferCall(inputs, numInputs, outputs, numOutputs, deadline);
        var status = _model.Run(ref call);
        if (status != SmiStatus.Success) throw _model.Plugin.Failure(status, $"infer on model '{_model.Id}'");
    }

    /// <summary>The scheduler thread; its buffers go with it.</summary>
    private void Schedule()
    {
        try { ScheduleBatches(); }
        finally { _assembler.Dispose(); }
    }

    private void ScheduleBatches()
    {
        while (true)
        {
            long totalRows;
            lock (_lock)
            {
                while (_queue.Count == 0)
                {
                    if (_stopping) return;
                    Monitor.Wait(_lock);
                }
                var first = _queue[0];
                long deadline = first.Enqueued + _delayTicks;
                while (!_stopping && CompatibleRows(first) < _options.MaxBatchSize)
                {
                    long left = deadline - Stopwatch.GetTimestamp();
                    if (left <= 0) break;
                    // Monitor waits in whole milliseconds: round up, the bound is "at least the delay".
                    Monitor.Wait(_lock, TimeSpan.FromMilliseconds(Math.Max(1, Math.Ceiling(left * 1000.0 / Stopwatch.Frequency))));
                }
                totalRows = Take(first);
            }
            // Whatever happens, every waiting caller gets an answer: a dead scheduler would hang them all.
            try { Execute(totalRows); }
            catch (Exception e)
            {
                var failure = new MlosException(SmiStatus.Runtime, $"batch on model '{_model.Id}' failed: {e.GetType().Name}: {e.Message}");
                foreach (var r in _batch)
                    if (!r.Answered) r.Failure = failure; // answered ones keep their outputs or their own failure
            }
            foreach (var r in _batch) r.Complete();
            _batch.Clear();
        }
    }

    /// <summary>Rows of the queued requests that could join <paramref name="first"/>'s batch, stopping at the limit.</summary>
    private long CompatibleRows(BatchRequest first)
    {
        long rows = 0;
        foreach (var r in _queue)
        {
            if (r != first && !r.SameSignature(first)) continue;
            if (rows + r.Rows > _options.MaxBatchSize) break;
            rows += r.Rows;
        }
        return rows;
    }

    /// <summary>Moves the batch out of the queue, oldest first, as many rows as fit.</summary>
    private long Take(BatchRequest first)
    {
        long rows = 0;
        for (int i = 0; i < _queue.Count;)
        {
            var r = _queue[i];
            if (r != first && !r.SameSignature(first)) { i++; continue; }
            if (rows + r.Rows > _options.MaxBatchSize) break;
            rows += r.Rows;
            _batch.Add(r);
            _queue.RemoveAt(i);
        }
        return rows;
    }

    private void Execute(long totalRows)
    {
        long started = Stopwatch.GetTimestamp();
        foreach (var r in _batch)
        {
            r.Started = started;
            r.BatchSize = _batch.Count;
        }
        Interlocked.Increment(ref _batches);
        Interlocked.Add(ref _requests, _batch.Count);
        if (_batch.Count == 1 || !RunMerged(totalRows))
            foreach (var r in _batch)
                if (!r.Answered) RunOwn(r);
    }

    /// <summary>One plugin call for the whole batch; false when it must be redone request by request.</summary>
    private bool RunMerged(long totalRows)
    {
        _assembler.Merge(_batch, totalRows);
        nuint count = BatchAssembler.MaxOutputs;
        // All requests of a model share its timeout: the oldest one's deadline is the batch's.
        ulong deadline = 0;
        foreach (var r in _batch)
            if (r.Deadline != 0 && (deadline == 0 || r.Deadline < deadline)) deadline = r.Deadline;
        var call = new InferCall(_assembler.Inputs, (nuint)_batch[0].NumInputs, _assembler.Outputs, &count, deadline);
        SmiStatus status;
        try { status = _model.Run(ref call); }
        catch (MlosException e)
        {
            foreach (var r in _batch)
            {
                r.Failure = e; // not runnable (unloading): the same answer for all
                r.Answered = true;
            }
            return true;
        }
        try
        {
            if (status == SmiStatus.Timeout)
            {
                // The batch ran on its oldest request's deadline: requests already past theirs
                // fail with it; younger ones get their own run (RunOwn) with the time they have.
                var failure = _model.Plugin.Failure(status, $"infer on model '{_model.Id}'");
                ulong now = Smi.Sdk.SmiDeadline.Now();
                foreach (var r in _batch)
                {
                    if (r.Deadline == 0 || r.Deadline > now) continue;
                    r.Failure = failure;
                    r.Answered = true;
                }
                return false;
            }
            if (status != SmiStatus.Success || !_assembler.Splittable((int)count, totalRows)) return false;
            long row = 0;
            foreach (var r in _batch)
            {
                _assembler.Split(r, (int)count, row, totalRows);
                row += r.Rows;
            }
            return true;
        }
        finally { _assembler.ReleaseOutputs(status == SmiStatus.Success ? (int)count : 0); }
    }

    private void RunOwn(BatchRequest r)
    {
        try { RunAlone(r.Inputs, (nuint)r.NumInputs, r.Outputs, r.NumOutputs, r.Deadline); }
        catch (MlosException e) { r.Failure = e; }
        r.Answered = true;
    }

    /// <summary>
    /// Stops taking requests and lets the scheduler run the ones already queued and end; false
    /// when it has not ended within <paramref name="timeoutMs"/> (a plugin call that hangs).
    /// </summary>
    public bool Stop(int timeoutMs)
    {
        lock (_lock)
        {
            _stopping = true;
            Monitor.PulseAll(_lock);
        }
        return _scheduler.Join(timeoutMs);
    }
}
