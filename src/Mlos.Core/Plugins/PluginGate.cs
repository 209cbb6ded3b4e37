namespace Mlos.Core.Plugins;

/// <summary>
/// The mutual-exclusion lock of a plugin that is not thread-safe, on the path of every
/// serialised call. Uncontended it costs one compare-and-swap to enter and two plain memory
/// operations to leave: <see cref="Lock"/> also tracks its owner's thread id, and a leave
/// that wakes waiters needs an atomic, both of which cost a measurable share of the dispatch.
/// The price moves to waiters: one announces itself, issues a process-wide memory barrier and
/// only then checks the gate again, so a leaving holder either sees the waiter (and wakes it)
/// or the waiter sees the gate free. Not re-entrant: plugin calls never nest on one plugin.
/// </summary>
internal sealed class PluginGate
{
    private const int Free = 0, Held = 1;
    private readonly object _parking = new();
    private int _state;
    private int _waiters;

    public void Enter()
    {
        if (Interlocked.CompareExchange(ref _state, Held, Free) != Free) EnterSlow(Timeout.Infinite);
    }

    /// <summary>Enters within <paramref name="timeoutMs"/>; false when the holder has not left by then.</summary>
    public bool TryEnter(int timeoutMs) =>
        Interlocked.CompareExchange(ref _state, Held, Free) == Free || EnterSlow(timeoutMs);

    public void Exit()
    {
        Volatile.Write(ref _state, Free);
        if (Volatile.Read(ref _waiters) != 0)
            lock (_parking) Monitor.Pulse(_parking);
    }

    /// <summary>Enter for a <c>using</c> block.</summary>
    public Scope Hold()
    {
        Enter();
        return new Scope(this);
    }

    private bool EnterSlow(int timeoutMs)
    {
        var spin = new SpinWait();
        for (int i = 0; i < 20; i++)
        {
            spin.SpinOnce(sleep1Threshold: -1);
            if (Interlocked.CompareExchange(ref _state, Held, Free) == Free) return true;
        }
        long deadline = timeoutMs == Timeout.Infinite ? long.MaxValue : Environment.TickCount64 + timeoutMs;
        lock (_parking)
        {
            Interlocked.Increment(ref _waiters);
            try
            {
                while (true)
                {
                    // Orders our announcement before the holder's plain Exit, as the summary says.
                    Interlocked.MemoryBarrierProcessWide();
                    if (Interlocked.CompareExchange(ref _state, Held, Free) == Free) return true;
                    // The holder pulses under _parking, which we hold until Wait releases it:
                    // a pulse cannot fall between the check above and the wait.
                    if (deadline == long.MaxValue) Monitor.Wait(_parking);
                    else
                    {
                        long left = deadline - Environment.TickCount64;
                        if (left <= 0) return false;
                        Monitor.Wait(_parking, (int)Math.Min(left, int.MaxValue));
                        // Time up: one last try, without another process-wide barrier.
                        if (deadline - Environment.TickCount64 <= 0)
                            return Interlocked.CompareExchange(ref _state, Held, Free) == Free;
                    }
                }
            }
            finally { Interlocked.Decrement(ref _waiters); }
        }
    }

    public readonly ref struct Scope(PluginGate gate)
    {
        public void Dispose() => gate.Exit();
    }
}
