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
/// as every other door. Calls for one id run one at a time, so an unload that ModelMesh sends
/// after cancelling a load waits for that load and then undoes it.
/// </summary>
internal sealed class ModelMeshModels(ServerState state, ModelRepository folders)
{
    /// <summary>Estimated bytes per byte on disk: weights plus the runtime's working memory (an estimate, as ModelMesh's Triton adapter makes it).</summary>
    private const double SizePerDiskByte = 1.25;
    /// <summary>ModelMesh's conservative guess for a model it knows nothing of: most models here are smaller.</summary>
    public const ulong DefaultModelBytes = 16UL << 20;

    private readonly ConcurrentDictionary<string, ulong> _sizes = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, object> _locks = new(StringComparer.Ordinal);

    private object Lock(string id) => _locks.GetOrAdd(id, static _ => new object());

    /// <summary>Loads the model (if this runtime has not already) and returns its estimated size in bytes.</summary>
    public ulong Load(string id, string type, string path)
    {
        RequireId(id);
        lock (Lock(id))
        {
            bool registered = state.Core.Models.Any(m => m.Id == id);
            // ModelMesh retries a load it lost the answer to: the model is here already.
            if (_sizes.TryGetValue(id, out var size) && registered) return size;
            if (registered)
                throw new MlosException(SmiStatus.AlreadyExists, $"a model '{id}' that ModelMesh did not place is registered: unregister it first");
            var full = state.ModelPath(path.Length > 0 ? path : throw new MlosException(SmiStatus.InvalidParam, "loadModel needs a modelPath"));
            if (Directory.Exists(full)) folders.LoadFolder(id, full);
            else if (File.Exists(full)) ModelLoader.RegisterAndLoad(state, id, state.PluginFor(full, type.Length > 0 ? type : null), full, new LoadOptions());
            else throw new MlosException(SmiStatus.InvalidParam, $"modelPath {path} names no file or folder");
            size = Estimate(DiskBytes(full));
            _sizes[id] = size;
            return size;
        }
    }

    /// <summary>Unloads a model ModelMesh placed; any other id (never loaded, already gone) succeeds at once, as the SPI asks.</summary>
    public void Unload(string id)
    {
        RequireId(id);
        lock (Lock(id))
        {
            if (!_sizes.ContainsKey(id)) return;
            // Forgotten only once it is gone: an unload that fails (calls still running past the
            // unload timeout) leaves it ModelMesh's to unload again.
            if (state.Core.Models.Any(m => m.Id == id)) state.Core.UnregisterModel(id);
            _sizes.TryRemove(id, out _);
            state.ModelConfigs.TryRemove(id, out _);
            state.Log.Admin($"model '{id}' unloaded by ModelMesh");
        }
    }

    /// <summary>Every model ModelMesh placed, unloaded: what runtimeStatus does before it says READY. The count.</summary>
    public int Purge()
    {
        int purged = 0;
        foreach (var id in _sizes.Keys.ToList())
        {
            Unload(id);
            purged++;
        }
        return purged;
    }

    public ulong Size(string id)
    {
        RequireId(id);
        return _sizes.TryGetValue(id, out var size) && state.Core.Models.Any(m => m.Id == id)
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
            if (File.Exists(full) || Directory.Exists(full)) return Estimate(DiskBytes(full));
        }
        catch (Exception e) when (e is MlosException or IOException or UnauthorizedAccessException) { } // the load will say what is wrong
        return DefaultModelBytes;
    }

    /// <summary>
    /// Bytes ModelMesh may fill with models: <c>--modelmesh-capacity-mb</c>, else three quarters of
    /// what this process may still use (the container's memory limit where there is one, less what it uses now).
    /// </summary>
    public ulong Capacity()
    {
        if (state.Options.ModelMeshCapacityBytes is > 0 and var given) return (ulong)given;
        long limit = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        return (ulong)Math.Max(0, (limit - Environment.WorkingSet) / 4 * 3);
    }

    private static ulong Estimate(long diskBytes) => Math.Max(1UL << 20, (ulong)Math.Ceiling(diskBytes * SizePerDiskByte));

    private static long DiskBytes(string path) => File.Exists(path)
        ? new FileInfo(path).Length
        : new DirectoryInfo(path).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);

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
