using Mlos.Smi.Abi;

namespace Mlos.Smi.Sdk;

/// <summary>
/// What a loaded model holds in its framework (a session, a module), shared by requests and
/// replaced or released by load and unload. Requests hold the read side of a lock for the whole
/// call and load/unload the write side, so nothing is released under a running request, whatever
/// host drives the plugin (the MLOS core drains requests itself; other SMI hosts may not).
/// </summary>
/// <typeparam name="T">The framework state; <c>release</c> frees it.</typeparam>
public sealed class LoadedModel<T>(string modelName, Action<T> release)
{
    private readonly ReaderWriterLockSlim _gate = new(LockRecursionPolicy.NoRecursion);
    private T _value = default!;
    private bool _loaded;

    public bool IsLoaded => Volatile.Read(ref _loaded);

    /// <summary>Installs <paramref name="value"/>, releasing what was loaded before (a reload).</summary>
    public void Replace(T value)
    {
        _gate.EnterWriteLock();
        try
        {
            if (_loaded) release(_value);
            _value = value;
            Volatile.Write(ref _loaded, true);
        }
        finally { _gate.ExitWriteLock(); }
    }

    /// <summary>Releases what is loaded, after the requests running on it.</summary>
    public void Release()
    {
        _gate.EnterWriteLock();
        try
        {
            if (_loaded) release(_value);
            _value = default!;
            Volatile.Write(ref _loaded, false);
        }
        finally { _gate.ExitWriteLock(); }
    }

    /// <summary>The loaded state for one request; dispose the lease when the request is done.</summary>
    public Lease Acquire()
    {
        _gate.EnterReadLock();
        if (!_loaded)
        {
            _gate.ExitReadLock();
            throw new SmiException(SmiStatus.InvalidState, $"model '{modelName}' is not loaded");
        }
        return new Lease(this);
    }

    public readonly struct Lease(LoadedModel<T> owner) : IDisposable
    {
        public T Value => owner._value;
        public void Dispose() => owner._gate.ExitReadLock();
    }

    /// <summary>
    /// The file a load opens: the path given to load_model, else the one given at registration;
    /// it must exist.
    /// </summary>
    public static string ModelFile(string? path, SmiModelDescription model)
    {
        path ??= model.Path;
        if (string.IsNullOrEmpty(path))
            throw new SmiException(SmiStatus.InvalidParam, $"model '{model.Name}' has no path: give one at registration or to load_model");
        return File.Exists(path) ? path : throw new SmiException(SmiStatus.NotFound, $"model file not found: {path}");
    }
}
