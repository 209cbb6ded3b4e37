using Mlos.Core.Isolation.Wire;
using Mlos.Core.Plugins;
using Mlos.Smi.Abi;

namespace Mlos.Core.Isolation;

/// <summary>What a plugin host reported once the plugin opened there.</summary>
internal sealed record HostedPlugin(uint SmiVersion, SmiCapabilities Capabilities, PluginEntries Entries, string NativeId, string Path);

/// <summary>
/// Keeps an isolated plugin's host process running: the current <see cref="HostProcess"/>, and
/// when it dies, a new one after the <see cref="RestartPolicy"/>'s wait, the plugin brought back to
/// where it was (<see cref="Replay"/>: initialize, then every model registered and loaded again)
/// before any call reaches it. Until then, and for good once the policy gives up, calls fail at
/// once with BUSY saying why. The state is what <c>/plugins</c> shows.
/// </summary>
internal sealed class HostSupervisor
{
    private readonly string _hostPath;
    private readonly NativePath _path;
    private readonly string _pluginId;
    private readonly IsolationOptions _options;
    private readonly Lock _lock = new();
    private readonly Queue<long> _recentCrashes = new();
    private volatile HostProcess _current;
    private volatile string _state = "serving";
    private int _restarts, _crashes;
    private string? _lastFailure;
    private DateTimeOffset? _lastFailureAt;
    private bool _closed;

    private HostSupervisor(string hostPath, NativePath path, string pluginId, IsolationOptions options)
    {
        _hostPath = hostPath;
        _path = path;
        _pluginId = pluginId;
        _options = options;
        _current = null!;
    }

    /// <summary>
    /// Brings a restarted host back to where the last one was, then calls the publish action it is
    /// given (which makes the host the current one); throws when it cannot.
    /// </summary>
    public Action<HostProcess, Action>? Replay { get; set; }

    public HostedPlugin Plugin { get; private set; } = null!;
    public IsolationOptions Options => _options;
    public HostProcess Current => _current;
    public bool IsServing => _current.IsAlive && _state == "serving";

    public HostState State
    {
        get
        {
            lock (_lock) return new HostState(_current.Pid, _state, _restarts, _crashes, _lastFailure, _lastFailureAt);
        }
    }

    /// <summary>Starts the first host; throws what opening the plugin there threw.</summary>
    public static HostSupervisor Start(NativePath path, string? pluginId, IsolationOptions options)
    {
        var supervisor = new HostSupervisor(HostExecutable.Find(), path, pluginId ?? "", options);
        var (host, plugin) = supervisor.Open();
        supervisor._current = host;
        supervisor.Plugin = plugin;
        if (!host.IsAlive) supervisor.Exited(host); // it died before the watcher could tell us
        return supervisor;
    }

    /// <summary>Names the plugin in messages once its id is known (the plugin's own id when none was given).</summary>
    public string PluginId { get; set; } = "";

    private (HostProcess, HostedPlugin) Open() =>
        HostProcess.Start(_hostPath, _path, _pluginId, _options.SharedMemoryBytes, (ulong)_options.MemoryLimitMb << 20, Exited);

    /// <summary>Why no call can start now, or null when the host serves.</summary>
    public MlosException? Refusal()
    {
        if (IsServing) return null;
        lock (_lock)
        {
            string why = _state switch
            {
                "restarting" => $"plugin '{PluginId}' is restarting after: {_lastFailure}",
                "down" when _closed => $"plugin '{PluginId}' is unloaded",
                "down" => $"plugin '{PluginId}' is down: its host died {Times(_recentCrashes.Count)} within {_options.Restart.WindowSeconds} s, more than its restart policy allows (last: {_lastFailure})",
                _ => $"plugin '{PluginId}' is not running: {_lastFailure ?? _current.Describe(PluginId, "").TrimEnd()}",
            };
            return new MlosException(SmiStatus.Busy, why);
        }
    }

    private static string Times(int n) => n == 1 ? "once" : $"{n} times";

    /// <summary>The watcher's word that <paramref name="host"/> ended: a restart is due unless the core let it go.</summary>
    private void Exited(HostProcess host)
    {
        // Only the current host's death counts, once (the watcher and a check after publishing a
        // host may both see it); a restart attempt that fails reports itself.
        if (host.IsStopping || host != _current || !host.ClaimExit()) return;
        host.Stop(); // its descriptors and idle channels go now; lent ones when given back
        Failed(host.Describe(PluginId, "").TrimEnd());
    }

    /// <summary>Counts a failure and schedules the next attempt, or gives up as the policy says.</summary>
    private void Failed(string failure)
    {
        int delay;
        lock (_lock)
        {
            if (_closed) return;
            _crashes++;
            _lastFailure = failure;
            _lastFailureAt = DateTimeOffset.UtcNow;
            long now = Environment.TickCount64;
            _recentCrashes.Enqueue(now);
            while (_recentCrashes.Count > 0 && _recentCrashes.Peek() < now - _options.Restart.WindowSeconds * 1000L) _recentCrashes.Dequeue();
            if (_recentCrashes.Count > _options.Restart.Max)
            {
                _state = "down";
                return;
            }
            _state = "restarting";
            delay = _options.Restart.Delay(_recentCrashes.Count);
        }
        new Thread(() => RestartAfter(delay)) { IsBackground = true, Name = $"mlos-restart-{PluginId}" }.Start();
    }

    private void RestartAfter(int delayMs)
    {
        if (delayMs > 0) Thread.Sleep(delayMs);
        HostProcess? fresh = null;
        try
        {
            (fresh, var plugin) = Open();
            if (plugin with { Path = Plugin.Path } != Plugin)
                throw new MlosException(SmiStatus.VersionMismatch, $"the plugin file changed since it was loaded (SMI {Smi.Abi.SmiVersion.Format(plugin.SmiVersion)}, id '{plugin.NativeId}')");
            bool published = false;
            void Publish()
            {
                lock (_lock)
                {
                    if (_closed) return;
                    _current = fresh;
                    _restarts++;
                    _state = "serving";
                    published = true;
                }
            }
            if (Replay is { } replay) replay(fresh, Publish);
            else Publish();
            if (!published)
            {
                fresh.Stop(); // unloaded meanwhile
                return;
            }
            if (!fresh.IsAlive) Exited(fresh); // died as it was published: its watcher may have looked too early
        }
        catch (Exception e)
        {
            fresh?.Stop();
            Failed($"restart failed: {e.Message}");
        }
    }

    /// <summary>Lets the host go for good (unload, destroy): no restart follows.</summary>
    public void Stop()
    {
        HostProcess current;
        lock (_lock)
        {
            _closed = true;
            _state = "down";
            current = _current;
        }
        current.Stop();
    }
}
