using System.Diagnostics;
using Mlos.Core.Models;
using Mlos.Smi.Abi;

namespace Mlos.Core.Batching;

/// <summary>
/// Triton-style dynamic batching for one model, with no thread of its own. Requests queue; one
/// caller at a time holds the lead and runs the next batch: the oldest request with the
/// compatible ones behind it (same input names, dtypes and dims after the first), up to
/// <c>max_batch_size</c> rows, after waiting up to <c>max_queue_delay_us</c> for more to arrive
/// (or until the rows reach one of the preferred batch sizes).
/// The outputs are cut back per request. Shapes never mix.
///
/// Who leads: a request that finds the model idle runs itself at once, on its own thread, with no
/// hand-off and no copy (a lone request is never delayed). Requests that arrive meanwhile queue;
/// when the leader is done it passes the lead to the oldest of them: a blocked caller is woken to
/// run its own batch, an awaiting one gets a thread-pool work item that runs batches until the
/// queue is empty. So with a delay of 0 (the default) batches are exactly what queued while the
/// previous one ran: batch size follows load. Invariant: whenever the queue holds a request,
/// some thread holds or is being handed the lead (<see cref="_leading"/>).
///
/// A request fails only itself: when a merged batch fails in the plugin, its requests are run one
/// by one so that each gets its own verdict; too-small output buffers fail their own request.
/// </summary>
internal sealed unsafe class DynamicBatcher : IThreadPoolWorkItem
{
    private readonly Model _model;
    private readonly BatchingOptions _options;
    private readonly long _delayTicks;
    private readonly object _lock = new();
    private readonly List<BatchRequest> _queue = new();
    /// <summary>The batch being run; only the leader touches it.</summary>
    private readonly List<BatchRequest> _batch = new();
    /// <summary>Made at the first merged batch (1000 idle models hold no buffers); only the leader touches it.</summary>
    private BatchAssembler? _assembler;
    private bool _leading, _stopping;
    private long _batches, _requests;

    /// <summary>The model instance this batcher runs its batches on (one batcher per instance).</summary>
    private readonly int _instance;

    public DynamicBatcher(Model model, BatchingOptions options, int instance = 0)
    {
        _model = model;
        _instance = instance;
        _options = options;
        _delayTicks = options.MaxQueueDelayMicroseconds * Stopwatch.Frequency / 1_000_000;
    }

    public BatchingOptions Options => _options;

    /// <summary>Requests waiting, plus one while a batch runs: how busy this instance is, read without the lock (a hint).</summary>
    public int Pending => Volatile.Read(ref _pending);
    private int _pending;
    /// <summary>Batches run so far and the requests they held (their ratio is the mean batch size).</summary>
    public (long Batches, long Requests) Counts => (Interlocked.Read(ref _batches), Interlocked.Read(ref _requests));

    /// <summary>Typed inference through the queue; requests that cannot merge run at once on the caller's thread.</summary>
    public InferTiming Infer(SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs, ulong deadline, in OutputSelection selection)
    {
        var r = BatchRequest.Mine;
        if (!r.TryBind(inputs, numInputs, outputs, numOutputs, _options, deadline, selection))
        {
            RunUnqueued(inputs, numInputs, outputs, numOutputs, deadline, selection);
            return new InferTiming(0, 1);
        }
        r.Done.Reset();
        if (Enqueue(r, mayLead: true)) LeadOnce();
        r.Done.Wait();
        while (r.Lead) // woken to lead the batch that holds this request (it is the oldest)
        {
            r.Lead = false;
            r.Done.Reset();
            LeadOnce();
            r.Done.Wait();
        }
        if (r.Failure is { } failure) throw failure;
        return r.Timing;
    }

    /// <summary>
    /// Typed inference through the queue without blocking a thread while the batch forms: the
    /// caller's tensors (and <paramref name="numOutputs"/>) must stay valid until the task completes.
    /// A request that finds the model idle (and no delay to wait) runs at once, synchronously.
    /// </summary>
    public ValueTask<InferTiming> InferAsync(SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs, ulong deadline, in OutputSelection selection)
    {
        var r = BatchRequest.RentAsync();
        if (!r.TryBind(inputs, numInputs, outputs, numOutputs, _options, deadline, selection))
        {
            r.Recycle();
            RunUnqueued(inputs, numInputs, outputs, numOutputs, deadline, selection);
            return new ValueTask<InferTiming>(new InferTiming(0, 1));
        }
        bool lead;
        // An awaiting caller must not block its thread for a queue delay: a work item waits instead.
        try { lead = Enqueue(r, mayLead: _delayTicks == 0); }
        catch
        {
            r.Recycle();
            throw;
        }
        if (lead) LeadOnce(); // completes r: the task below is already done
        return new ValueTask<InferTiming>(r, r.Version);
    }

    /// <summary>
    /// Queues a bound request; true when the caller now holds the lead and must run the next
    /// batch. When the model is idle and the caller may not lead, a work item takes the lead.
    /// BUSY once unloading has begun.
    /// </summary>
    private bool Enqueue(BatchRequest r, bool mayLead)
    {
        r.Enqueued = Stopwatch.GetTimestamp();
        lock (_lock)
        {
            if (_stopping) throw new MlosException(SmiStatus.Busy, $"model '{_model.Id}' is unloading") { Refused = true };
            _queue.Add(r);
            Recount();
            if (_leading)
            {
                if (_delayTicks != 0) Monitor.Pulse(_lock); // a leader waiting for its batch to fill
                return false;
            }
            _leading = true;
            Recount();
        }
        if (mayLead) return true;
        HandToWorkItem();
        return false;
    }

    /// <summary>Refreshes <see cref="Pending"/>; under the lock.</summary>
    private void Recount() => Volatile.Write(ref _pending, _queue.Count + (_leading ? 1 : 0));

    /// <summary>Passes the lead to a thread-pool work item; if none can be queued, the queue is failed rather than left leaderless.</summary>
    private void HandToWorkItem()
    {
        try { ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false); }
        catch (Exception e) { Abandon(e); }
    }

    /// <summary>
    /// The lead broke (an exception outside any plugin call, e.g. out of memory): every queued
    /// request fails with it and the lead is given up, so that nothing waits forever for a
    /// leader and unload is not held up.
    /// </summary>
    private void Abandon(Exception e)
    {
        var failure = e as MlosException ?? new MlosException(SmiStatus.Runtime, $"batching on model '{_model.Id}' failed: {e.Message}");
        List<BatchRequest> stranded;
        lock (_lock)
        {
            stranded = [.. _queue];
            _queue.Clear();
            _leading = false;
            Recount();
            Monitor.PulseAll(_lock);
        }
        foreach (var r in stranded)
        {
            r.Failure = failure;
            r.Complete();
        }
    }

    /// <summary>A work item's lead: batches until the queue is empty or a blocked caller takes over.</summary>
    void IThreadPoolWorkItem.Execute()
    {
        try
        {
            do RunBatch();
            while (PassLead());
        }
        catch (Exception e) { Abandon(e); }
    }

    /// <summary>A request's lead: one batch (its own), then the lead goes on.</summary>
    private void LeadOnce()
    {
        bool more;
        try
        {
            RunBatch();
            more = PassLead();
        }
        catch (Exception e)
        {
            Abandon(e);
            return;
        }
        if (more) HandToWorkItem();
    }

    /// <summary>
    /// After a batch: gives the lead up when the queue is empty, or hands it to the oldest queued
    /// request when that caller is blocked waiting (it leads its own batch). True when the lead
    /// stays with the caller because an awaiting request is next: a work item goes on with it.
    /// </summary>
    private bool PassLead()
    {
        lock (_lock)
        {
            if (_queue.Count == 0)
            {
                _leading = false;
                Recount();
                if (_stopping)
                {
                    _assembler?.Dispose();
                    _assembler = null;
                    Monitor.PulseAll(_lock); // Stop waits for this
                }
                return false;
            }
            var next = _queue[0];
            if (next.IsAsync) return true;
            next.Lead = true;
            next.Done.Set();
            return false;
        }
    }

    /// <summary>A request outside any batch: one that cannot merge, or one of a batch rerun request by request.</summary>
    private Models.ModelStatistics.ExecutionTimes RunAlone(SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs, ulong deadline, in OutputSelection selection)
    {
        var call = new InferCall(inputs, numInputs, outputs, numOutputs, deadline, selection, _model.RowsOf(inputs, numInputs));
        var status = _model.Run(ref call, _instance, out long ticks);
        if (status != SmiStatus.Success) throw _model.Plugin.Failure(status, $"infer on model '{_model.Id}'");
        var times = new Models.ModelStatistics.ExecutionTimes(0, ticks, 0);
        _model.Statistics.Execution(call.Rows, times);
        return times;
    }

    /// <summary><see cref="RunAlone"/> for a request that never queued: counted as a request of its own.</summary>
    private void RunUnqueued(SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs, ulong deadline, in OutputSelection selection)
    {
        var call = new InferCall(inputs, numInputs, outputs, numOutputs, deadline, selection, _model.RowsOf(inputs, numInputs));
        var status = _model.RunRequest(ref call);
        if (status != SmiStatus.Success) throw _model.Plugin.Failure(status, $"infer on model '{_model.Id}'");
    }

    /// <summary>Takes the next batch (waiting up to the queue delay for it to fill) and runs it; the caller leads.</summary>
    private void RunBatch()
    {
        // Whatever happens, every caller of the batch gets an answer: a lost batch would hang them all.
        try
        {
            long totalRows;
            lock (_lock)
            {
                var first = _queue[0];
                if (_delayTicks != 0)
                {
                    long deadline = first.Enqueued + _delayTicks;
                    while (!_stopping && CompatibleRows(first) is var rows && rows < _options.MaxBatchSize
                           && Array.IndexOf(_options.PreferredBatchSizes, (int)rows) < 0)
                    {
                        long left = deadline - Stopwatch.GetTimestamp();
                        if (left <= 0) break;
                        // Monitor waits in whole milliseconds: round up, the bound is "at least the delay".
                        Monitor.Wait(_lock, TimeSpan.FromMilliseconds(Math.Max(1, Math.Ceiling(left * 1000.0 / Stopwatch.Frequency))));
                    }
                }
                totalRows = Take(first);
            }
            Execute(totalRows);
        }
        catch (Exception e)
        {
            var failure = new MlosException(SmiStatus.Runtime, $"batch on model '{_model.Id}' failed: {e.Message}");
            foreach (var r in _batch)
                if (!r.Answered) r.Failure = failure; // answered ones keep their outputs or their own failure
        }
        long done = Stopwatch.GetTimestamp();
        foreach (var r in _batch)
        {
            // Started is this batch's (a request that never reached Execute keeps an older one).
            long queued = r.Started >= r.Enqueued ? r.Started - r.Enqueued : 0;
            _model.Statistics.Batched(r.Failure is null, done - r.Enqueued, queued, done, r.Rows, r.Times);
            r.Complete();
        }
        _batch.Clear();
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
        Recount();
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
        var assembler = _assembler ??= new BatchAssembler();
        long gather = Stopwatch.GetTimestamp();
        assembler.Merge(_batch, totalRows);
        long input = Stopwatch.GetTimestamp() - gather;
        nuint count = BatchAssembler.MaxOutputs;
        // All requests of a model share its timeout: the oldest one's deadline is the batch's.
        ulong deadline = 0;
        foreach (var r in _batch)
            if (r.Deadline != 0 && (deadline == 0 || r.Deadline < deadline)) deadline = r.Deadline;
        // Requests merge only with the same selection (BatchRequest.SameSignature): the first's is the batch's.
        var call = new InferCall(assembler.Inputs, (nuint)_batch[0].NumInputs, assembler.Outputs, &count, deadline, _batch[0].Selection, totalRows);
        SmiStatus status;
        long compute;
        try { status = _model.Run(ref call, _instance, out compute); }
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
            if (status != SmiStatus.Success || !assembler.Splittable((int)count, totalRows)) return false;
            long row = 0, split = Stopwatch.GetTimestamp();
            foreach (var r in _batch)
            {
                assembler.Split(r, (int)count, row, totalRows);
                row += r.Rows;
            }
            var times = new Models.ModelStatistics.ExecutionTimes(input, compute, Stopwatch.GetTimestamp() - split);
            _model.Statistics.Execution(totalRows, times);
            foreach (var r in _batch) r.Times = times;
            return true;
        }
        finally { assembler.ReleaseOutputs(status == SmiStatus.Success ? (int)count : 0); }
    }

    private void RunOwn(BatchRequest r)
    {
        try { r.Times = RunAlone(r.Inputs, (nuint)r.NumInputs, r.Outputs, r.NumOutputs, r.Deadline, r.Selection); }
        catch (MlosException e) { r.Failure = e; }
        r.Answered = true;
    }

    /// <summary>
    /// Stops taking requests and lets the ones already queued run; false when the lead has not
    /// been given up within <paramref name="timeoutMs"/> (a plugin call that hangs): the last
    /// leader then frees the buffers when it ends.
    /// </summary>
    public bool Stop(int timeoutMs)
    {
        long deadline = Environment.TickCount64 + timeoutMs;
        lock (_lock)
        {
            _stopping = true;
            Monitor.PulseAll(_lock); // a leader waiting for its batch to fill runs it now
            while (_leading)
            {
                long left = deadline - Environment.TickCount64;
                if (left <= 0) return false;
                Monitor.Wait(_lock, (int)Math.Min(left, int.MaxValue));
            }
            _assembler?.Dispose();
            _assembler = null;
            return true;
        }
    }
}
