using Mlos.Smi.Sdk;
using static Mlos.Plugins.Python.CPython;

namespace Mlos.Plugins.Python;

/// <summary>
/// Stops Python code that runs past a deadline: a timer raises TimeoutError in the calling
/// thread through PyThreadState_SetAsyncExc. Made and disposed by a thread holding the GIL; the
/// timer takes the GIL too, so "is the call still running" and "raise" cannot be split by the
/// call's end, and an exception raised just before the end is withdrawn there, never left to
/// hit the thread's next, unrelated Python code.
/// </summary>
internal sealed class PythonDeadline : IDisposable
{
    private readonly nuint _thread;
    private readonly Timer _timer;
    private bool _done; // read and written under the GIL

    public unsafe PythonDeadline(SmiDeadline deadline)
    {
        _thread = PyThread_get_thread_ident();
        _timer = new Timer(static s => ((PythonDeadline)s!).Fire(), this, deadline.RemainingMilliseconds, Timeout.Infinite);
    }

    /// <summary>Whether TimeoutError was raised: a failure of the call is then the deadline's.</summary>
    public bool Fired { get; private set; }

    private unsafe void Fire()
    {
        using var gil = new Gil();
        if (_done) return;
        Fired = true;
        PyThreadState_SetAsyncExc(_thread, PyExc_TimeoutError);
    }

    /// <summary>Called with the GIL held, on the thread that made it.</summary>
    public unsafe void Dispose()
    {
        _done = true;
        _timer.Dispose();
        if (Fired) PyThreadState_SetAsyncExc(_thread, 0); // withdraws one not yet delivered
    }
}
