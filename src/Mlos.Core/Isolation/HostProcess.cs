using System.Collections.Concurrent;
using Mlos.Core.Isolation.Interop;
using Mlos.Core.Isolation.Wire;
using Mlos.Smi.Abi;

namespace Mlos.Core.Isolation;

/// <summary>
/// One running <c>mlos_plugin_host</c>: its pid, the first channel (which hands the host every
/// other), the channels calls run on (one call at a time each; idle ones kept for the next call),
/// and a thread that waits for the process to end and says how it did. Once the host is gone every
/// call fails at once with that reason; the calls it was running fail as their channel closes.
/// </summary>
internal sealed unsafe class HostProcess : IDisposable
{
    /// <summary>Most channels to one host: each is a thread there. Calls past it wait for one to come back.</summary>
    public const int MaxLanes = 256;

    private readonly WireChannel _control;
    private readonly Lock _controlLock = new();
    private readonly ConcurrentStack<WireChannel> _idle = new();
    /// <summary>Channels rented out (a call on them, or outputs lent from them): woken when the host dies.</summary>
    private readonly ConcurrentDictionary<WireChannel, byte> _rented = new();
    private readonly SemaphoreSlim _lanes = new(MaxLanes, MaxLanes);
    private readonly ManualResetEventSlim _exited = new();
    private readonly ulong _sharedLimit;
    private readonly Action<HostProcess>? _onExit;
    private volatile string? _exit;
    private volatile string? _killedBecause;
    private volatile bool _disposed;

    private HostProcess(int pid, WireChannel control, ulong sharedLimit, Action<HostProcess>? onExit)
    {
        Pid = pid;
        _control = control;
        _sharedLimit = sharedLimit;
        _onExit = onExit;
        var watcher = new Thread(Watch) { IsBackground = true, Name = $"mlos-host-{pid}" };
        watcher.Start();
    }

    public int Pid { get; }

    /// <summary>How the process ended ("SIGSEGV", "exit status 1"), or null while it runs.</summary>
    public string? Exit => _exit;

    public bool IsAlive => _exit is null;

    /// <summary>Whether the core let the host go (<see cref="Stop"/>), as opposed to its dying.</summary>
    public bool IsStopping => _disposed;

    /// <summary>
    /// Starts a host for the plugin at <paramref name="path"/> and waits until it says whether the
    /// plugin opened. <paramref name="onExit"/> runs on the watcher thread once the process has ended.
    /// </summary>
    public static (HostProcess Host, WireFrame Ready) Start(string hostPath, NativePath path, string pluginId, ulong sharedLimit, ulong memoryLimit, Action<HostProcess>? onExit)
    {
        var (core, child) = UnixSocket.Pair();
        SharedRegion? region = null;
        WireChannel? control = null;
        int pid;
        try
        {
            region = SharedRegion.Create(SharedRegion.InitialSize);
            pid = Spawn.Start(hostPath, [], [child, region.Fd]);
            control = new WireChannel(core, region);
        }
        catch
        {
            region?.Dispose();
            UnixSocket.Close(core);
            throw;
        }
        finally { UnixSocket.Close(child); }

        var host = new HostProcess(pid, control, sharedLimit, onExit);
        try
        {
            var w = new WireWriter(region, 0);
            w.U32(WireProtocol.Version);
            w.Bytes(path.Terminated.AsSpan(0, path.Terminated.Length - 1));
            w.Text(pluginId);
            w.U64(sharedLimit);
            w.U64(memoryLimit);
            if (!control.Send(WireOp.Open, 0, w.Length) || !control.Receive(out var frame) || frame.Op != WireOp.Ready)
                throw host.Gone(pluginId, "while opening it");
            return (host, frame);
        }
        catch
        {
            host.Dispose();
            throw;
        }
    }

    /// <summary>The message of the host's answer to its open request.</summary>
    public WireReader ReadyMessage(WireFrame ready) => _control.Reader(ready);

    private void Watch()
    {
        var how = Spawn.WaitForExit(Pid);
        _exit = _killedBecause is { } why ? $"stopped ({why})" : how;
        _exited.Set();
        foreach (var busy in _rented.Keys) Doorbell.WakeCore(busy.Region);
        while (_idle.TryPop(out var lane)) lane.Dispose();
        lock (_controlLock) _control.Dispose(); // a dead host's descriptors go now, not when the plugin is unloaded
        _onExit?.Invoke(this);
    }

    private int _exitClaimed;

    /// <summary>True for the first caller only: who handles this host's death.</summary>
    public bool ClaimExit() => Interlocked.Exchange(ref _exitClaimed, 1) == 0;

    /// <summary>Kills the host for <paramref name="reason"/>, which its exit then gives as the cause.</summary>
    public void Kill(string reason)
    {
        _killedBecause ??= reason;
        Spawn.Kill(Pid, Spawn.SIGKILL);
    }

    /// <summary>
    /// The failure of a call the host did not answer, <paramref name="during"/> saying what it was
    /// doing: it died (how, once the kernel has told the watcher, which is moments after the
    /// channel closed: "SIGSEGV in plugin 'x' while running model 'm'") or closed its channel.
    /// BUSY (HTTP 503, gRPC UNAVAILABLE): the request was fine, the plugin is not serving.
    /// </summary>
    public MlosException Gone(string pluginId, string during)
    {
        _exited.Wait(TimeSpan.FromSeconds(2));
        return new MlosException(SmiStatus.Busy, Describe(pluginId, during));
    }

    public string Describe(string pluginId, string during) => _exit switch
    {
        null => $"plugin '{pluginId}' closed its channel {during}",
        { } e when e.StartsWith("SIG", StringComparison.Ordinal) => $"{e} in plugin '{pluginId}' {during}",
        { } e when e.StartsWith("stopped", StringComparison.Ordinal) => $"plugin '{pluginId}' was {e} {during}",
        { } e => $"plugin '{pluginId}' exited ({e}) {during}",
    };

    /// <summary>A channel for one call, made when none is idle; give it back with <see cref="Return"/>.</summary>
    public WireChannel Rent()
    {
        if (!_lanes.Wait(TimeSpan.FromSeconds(30)))
            throw new MlosException(SmiStatus.Busy, $"all {MaxLanes} channels to the plugin host are in use");
        try
        {
            if (!_idle.TryPop(out var lane)) lane = Open();
            _rented[lane] = 0;
            if (_exit is not null) Doorbell.WakeCore(lane.Region); // died meanwhile: the watcher may have looked already
            return lane;
        }
        catch
        {
            _lanes.Release();
            throw;
        }
    }

    private WireChannel Open()
    {
        var (core, child) = UnixSocket.Pair();
        SharedRegion? region = null;
        try
        {
            region = SharedRegion.Create(_sharedLimit);
            var frame = new WireFrame { Op = WireOp.Lane, RegionSize = region.Size };
            bool sent;
            lock (_controlLock) sent = _control.Socket >= 0 && UnixSocket.SendWithFds(_control.Socket, &frame, WireFrame.Size, child, region.Fd);
            if (!sent) throw new MlosException(SmiStatus.Busy, "the plugin host is not running");
            return new WireChannel(core, region, WireSide.Core);
        }
        catch
        {
            region?.Dispose();
            UnixSocket.Close(core);
            throw;
        }
        finally { UnixSocket.Close(child); }
    }

    /// <summary>Gives a channel back after its call (and the outputs lent from its region) are done; a dead host's are closed.</summary>
    public void Return(WireChannel lane)
    {
        _rented.TryRemove(lane, out _);
        if (_exit is null && !_disposed) _idle.Push(lane);
        else lane.Dispose();
        _lanes.Release();
    }

    /// <summary>A channel whose call went wrong midway (the host did not answer): never reused.</summary>
    public void Discard(WireChannel lane)
    {
        _rented.TryRemove(lane, out _);
        lane.Dispose();
        _lanes.Release();
    }

    /// <summary>
    /// Lets the host go: its first channel closes, which it takes as the end (it exits); one that
    /// does not within <paramref name="graceMs"/> is killed. Idle channels close now, lent ones when given back.
    /// </summary>
    public void Stop(int graceMs = 2000)
    {
        if (_disposed) return;
        _disposed = true;
        lock (_controlLock)
            if (_control.Socket >= 0) UnixSocket.Shutdown(_control.Socket, 2);
        while (_idle.TryPop(out var lane)) lane.Dispose();
        if (!_exited.Wait(graceMs))
        {
            Spawn.Kill(Pid, Spawn.SIGKILL);
            _exited.Wait(graceMs);
        }
        lock (_controlLock) _control.Dispose();
    }

    public void Dispose() => Stop();
}
