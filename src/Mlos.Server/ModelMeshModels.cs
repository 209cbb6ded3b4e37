using System.Collections.Concurrent;
using System.Text.Json;
using Mlos.Core;
using Mlos.Smi.Abi;

namespace Mlos.Server;

/// <summary>
/// The models ModelMesh placed on this runtime through its SPI (<c>mmesh.ModelRuntime</c>, served
/// with <c>--modelmesh</c>), kept apart from the models registered by other means: ModelMesh may
/// unload and purge only its own. Each is registered under ModelMesh's model id from the path its
/// puller wrote (a model file, or a folder in either repository layout), through the same loader
/// as every other door. Calls for one id run one at a time. An id is ModelMesh's from the moment
/// a load of it starts: a load that fails takes back whatever it registered (a Triton folder's
/// first versions), an unload removes whatever is registered under it, and a load that ModelMesh
/// cancelled is undone, whether its unload came before or after it.
/// </summary>
internal sealed class ModelMeshModels(ServerState state, ModelRepository folders)
{
    /// <summary>Estimated bytes per byte on disk: weights plus the runtime's working memory (an estimate, as ModelMesh's Triton adapter makes it).</summary>
    private const double SizePerDiskByte = 1.25;
    /// <summary>ModelMesh's conservative guess for a model it knows nothing of: most models here are smaller.</summary>
    public const ulong DefaultModelBytes = 16UL << 20;

    /// <summary>Every id ModelMesh placed or is placing, with its size once loaded (0 while loading).</summary>
    private readonly ConcurrentDictionary<string, ulong> _placed = new(StringComparer.Ordinal);
    private readonly StripedLocks _locks = new();

    private bool Registered(string id) => state.Core.Models.Any(m => m.Id == id);

    /// <summary>Loads the model (if this runtime has not already) and returns its estimated size in bytes.</summary>
    public ulong Load(string id, string type, string path, CancellationToken cancelled)
    {
        RequireId(id);
        lock (_locks.For(id))
        {
            // ModelMesh retries a load it lost the answer to: the model is here already.
            if (_placed.TryGetValue(id, out var size) && size > 0 && Registered(id)) return size;
            if (!_placed.ContainsKey(id) && Registered(id))
                throw new MlosException(SmiStatus.AlreadyExists, $"a model '{id}' that ModelMesh did not place is registered: unregister it first");
            // Cancelled before it began (ModelMesh's unload may already have been answered): nothing to undo.
            cancelled.ThrowIfCancellationRequested();
            var full = state.ModelPath(path.Length > 0 ? path : throw new MlosException(SmiStatus.InvalidParam, "loadModel needs a modelPath"));
            bool folder = Directory.Exists(full);
            if (!folder && !File.Exists(full)) throw new MlosException(SmiStatus.InvalidParam, $"modelPath {path} names no file or folder");
            size = Estimate(DiskBytes(full, path));
            _placed[id] = 0;
            try
            {
                if (folder) folders.LoadFolder(id, full);
                else ModelLoader.RegisterAndLoad(state, id, state.PluginFor(full, type.Length > 0 ? type : null), full, new LoadOptions());
                cancelled.ThrowIfCancellationRequested(); // cancelled while it loaded: undone below
            }
            catch
            {
                try { Remove(id, "its load failed or was cancelled"); }
                catch (MlosException e) { state.Log.Warn($"model '{id}': its failed load could not be undone yet ({e.Message}); ModelMesh's unload will try again"); }
                throw;
            }
            _placed[id] = size;
            return size;
        }
    }

    /// <summary>Unloads whatever ModelMesh placed (or tried to place) under the id; any other id succeeds at once, as the SPI asks.</summary>
    public void Unload(string id)
    {
        RequireId(id);
        lock (_locks.For(id))
        {
            if (_placed.ContainsKey(id)) Remove(id, "unloaded by ModelMesh");
        }
    }

    /// <summary>
    /// Unregisters the id's model (every version) and forgets it. Forgotten only once it is gone:
    /// an unregister that fails (calls still running past the unload timeout) leaves it ModelMesh's
    /// to unload again. The caller holds the id's lock.
    /// </summary>
    private void Remove(string id, string why)
    {
        bool was = Registered(id);
        if (was) state.Core.UnregisterModel(id);
        _placed.TryRemove(id, out _);
        folders.Forget(id);
        if (was) state.Log.Admin($"model '{id}' unloaded: {why}");
    }

    /// <summary>
    /// Every model ModelMesh placed, unloaded: what runtimeStatus does before it says READY. A
    /// load still running is waited for (its id's lock) and then undone. The models it could not
    /// unload (calls outlasting the unload timeout), each with the reason; the count it unloaded.
    /// </summary>
    public (int Unloaded, List<string> Failed) Purge()
    {
        int unloaded = 0;
        var failed = new List<string>();
        foreach (var id in _placed.Keys.ToList())
        {
            lock (_locks.For(id))
            {
                if (!_placed.ContainsKey(id)) continue;
                try
                {
                    bool was = Registered(id);
                    Remove(id, "ModelMesh asked for the runtime status (it purges what it had placed)");
                    if (was) unloaded++;
                }
                catch (MlosException e) { failed.Add($"'{id}': {e.Message}"); }
            }
        }
        return (unloaded, failed);
    }

    public ulong Size(string id)
    {
        RequireId(id);
        return _placed.TryGetValue(id, out var size) && size > 0 && Registered(id)
            ? size : throw new MlosException(SmiStatus.NotFound, $"model '{id}' is not loaded by ModelMesh");
    }

    /// <summary>
    /// A size for a model not loaded yet, answered at once: from the storage layer's
    /// <c>disk_size_bytes</c> in the model key, else the files at the path, else the default. Never fails.
    /// </summary>
    public ulong Predict(string path, string key)
    {
        if (DiskSizeInKey(key) is { } disk) return Estimate(disk);
        try
        {
            var full = state.ModelPath(path);
            if (File.Exists(full) || Directory.Exists(full)) return Estimate(DiskBytes(full, path));
        }
        catch (MlosException) { } // the load will say what is wrong
        return DefaultModelBytes;
    }

    /// <summary>
    /// Bytes ModelMesh may fill with models: <c>--modelmesh-capacity-mb</c>, else three quarters of
    /// what this process may still use: the cgroup's memory limit (the container's), else the
    /// machine's memory, less what the process uses now.
    /// </summary>
    public ulong Capacity()
    {
        if (state.Options.ModelMeshCapacityBytes is > 0 and var given) return (ulong)given;
        return (ulong)Math.Max(0, (MemoryLimit.Bytes() - Environment.WorkingSet) / 4 * 3);
    }

    private static ulong Estimate(long diskBytes) => Math.Max(1UL << 20, (ulong)Math.Ceiling(diskBytes * SizePerDiskByte));

    private static long DiskBytes(string full, string given)
    {
        try
        {
            return File.Exists(full)
                ? new FileInfo(full).Length
                : new DirectoryInfo(full).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new MlosException(SmiStatus.InvalidParam, $"modelPath {given} cannot be read: {e.Message}");
        }
    }

    private static long? DiskSizeInKey(string key)
    {
        if (string.IsNullOrWhiteSpace(key)) return null;
        try
        {
            using var doc = JsonDocument.Parse(key);
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("disk_size_bytes", out var d)
                   && d.TryGetInt64(out var bytes) && bytes >= 0 ? bytes : null;
        }
        catch (JsonException) { return null; }
    }

    private static void RequireId(string id)
    {
        if (id.Length == 0) throw new MlosException(SmiStatus.InvalidParam, "the request names no modelId");
    }
}
