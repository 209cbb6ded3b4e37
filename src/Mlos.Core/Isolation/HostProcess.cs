using System.Collections.Concurrent;
using Mlos.Core.Isolation.Interop;
using Mlos.Core.Isolation.Wire;
using Mlos.Core.Plugins;
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
    private readonly Func<bool> _isAlive;
    private volatile string? _exit;
    private volatile string? _killedBecause;
    private volatile bool _disposed;

    private HostProcess(int pid, WireChannel control, ulong sharedLimit, Action<HostProcess>? onExit)
    {
        Pid = pid;
        _control = control;
        _sharedLimit = sharedLimit;
        _onExit = onExit;
        _isAlive = () => _exit is null;
        var watcher = new Thread(Watch) { IsBackground = true, Name = $"mlos-host-{pid}" };
        watcher.Start();
    }

    public int Pid { get; }

    /// <summary>How the process ended ("SIGSEGV", "exit status 1"), or null while it runs.</summary>
    public string? Exit => _exit;

    public bool IsAlive => _exit is null;

    /// <summary>Whether the core let the host go (<see cref="Stop"/>), as opposed to its dying.</summary>
    public bool IsStopping => _disposed;

    /// <summary>Longest a new host may take to open its plugin (dlopen, smi_plugin_init) before it is killed.</summary>
    public const int OpenTimeoutMs = 120_000;

    /// <summary>
    /// Starts a host for the plugin at <paramref name="path"/> and waits until it says whether the
    /// plugin opened: its description, or the loader's error thrown. <paramref name="onExit"/> runs
    /// on the watcher thread once the process has ended.
    /// </summary>
    public static (HostProcess Host, HostedPlugin Plugin) Start(string hostPath, NativePath path, string pluginId, ulong sharedLimit, ulong memoryLimit, Action<HostProcess>? onExit)
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
            if (!control.Send(WireOp.Open, 0, w.Length)) throw host.Gone(pluginId, "while opening it");
            // Waited for in slices: a host that died (its socket possibly kept open by a child it
            // forked) or hangs in the plugin's initialisers must not hold the core forever.
            long deadline = Environment.TickCount64 + OpenTimeoutMs;
            while (!UnixSocket.WaitReadable(control.Socket, 20))
            {
                if (!host.IsAlive) throw host.Gone(pluginId, "while opening it");
                if (Environment.TickCount64 > deadline)
                {
                    host.Kill($"it took more than {OpenTimeoutMs / 1000} s to open the plugin");
                    throw new MlosException(SmiStatus.Timeout, $"plugin '{pluginId}' took more than {OpenTimeoutMs / 1000} s to open in its host process");
                }
            }
            if (!control.Receive(out var frame) || frame.Op != WireOp.Ready) throw host.Gone(pluginId, "while opening it");
            // Read here, while only this thread uses the channel (the watcher never closes it).
            var ready = control.Reader(frame);
            var message = ready.String();
            if (frame.Flags.HasFlag(WireFlags.HostFailure))
                throw new MlosException(WireStatus.OfHostFailure(frame.Status), message ?? "the plugin host could not open the plugin");
            var plugin = new HostedPlugin(ready.U32(), (SmiCapabilities)ready.U64(), (PluginEntries)ready.U32(), ready.String() ?? "", ready.String() ?? path.Text);
            return (host, plugin);
        }
        catch
        {
            host.Stop();
            throw;
        }
    }

    private void Watch()
    {
        Spawn.WaitUntilEnded(Pid);
        lock (_killLock) _ended = true; // no kill from here on: the pid is about to be free for reuse
        var how = Spawn.WaitForExit(Pid);
        _exit = _killedBecause is { } why ? $"stopped ({why})" : how;
        foreach (var busy in _rented.Keys) Doorbell.WakeCore(busy.Region);
        while (_idle.TryPop(out var lane)) lane.Dispose();
        // The supervisor first (its state then says restarting or down), then the calls that wait
        // in Gone: what they report and what /plugins shows agree.
        try { _onExit?.Invoke(this); }
        finally { _exited.Set(); }
    }

    private readonly Lock _killLock = new();
    private bool _ended;

    private int _exitClaimed;

    /// <summary>True for the first caller only: who handles this host's death.</summary>
    public bool ClaimExit() => Interlocked.Exchange(ref _exitClaimed, 1) == 0;

    /// <summary>Kills the host for <paramref name="reason"/>, which its exit then gives as the cause; nothing once it has ended.</summary>
    public void Kill(string reason)
    {
        lock (_killLock)
        {
            if (_ended) return;
            _killedBecause ??= reason;
            Spawn.Kill(Pid, Spawn.SIGKILL);
        }
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
            return new WireChannel(core, region, WireSide.Core) { PeerAlive = _isAlive };
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
        if (_exit is null && !_disposed)
        {
            _idle.Push(lane);
            // The host may have died (or been let go) meanwhile, its idle channels closed already.
            if (_exit is not null || _disposed) while (_idle.TryPop(out var idle)) idle.Dispose();
        }
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
        if (!Volatile.Read(ref _ended) && !_exited.Wait(graceMs))
        {
            Kill($"it did not exit within {graceMs} ms of being let go");
            _exited.Wait(graceMs);
        }
        lock (_controlLock) _control.Dispose();
    }

    public void Dispose() => Stop();
}
