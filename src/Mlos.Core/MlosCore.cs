using System.Collections.Concurrent;
using Mlos.Core.Models;
using Mlos.Core.Plugins;
using Mlos.Smi.Abi;

namespace Mlos.Core;

/// <summary>
/// The runtime behind both front doors: loaded plugins, registered models and dispatch into
/// them. Every public member is thread-safe. Failures throw <see cref="MlosException"/>, which the
/// C API turns into a status and the thread's last error, and the server into a JSON error.
/// </summary>
public sealed unsafe class MlosCore : IDisposable
{
    /// <summary>Longest model or plugin id accepted.</summary>
    public const int MaxIdLength = 256;

    private readonly ConcurrentDictionary<string, Plugin> _plugins = new(StringComparer.Ordinal);
    /// <summary>Every model id's versions; a set is replaced, never changed, under <see cref="_registryLock"/>.</summary>
    private readonly ConcurrentDictionary<string, ModelVersions> _models = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ModelVersions>.AlternateLookup<ReadOnlySpan<char>> _modelsBySpan;
    /// <summary>Models registered with their plugin but not yet published (<see cref="PrepareModel"/>).</summary>
    private readonly ConcurrentDictionary<Model, byte> _prepared = new();
    /// <summary>Replaced or retired models whose unregister timed out (BUSY): out of reach, still to be let go.</summary>
    private readonly ConcurrentDictionary<Model, byte> _leftovers = new();
    /// <summary>
    /// Guards registry changes, which are short: plugin code (initialize, register_model) runs
    /// outside it, with its id reserved in <see cref="_reserved"/>, so one slow plugin holds up
    /// no other registration, load or lookup.
    /// </summary>
    private readonly Lock _registryLock = new();
    /// <summary>Plugin ids ("plugin:x") and model versions ("model:x\0v") whose registration is under way.</summary>
    private readonly HashSet<string> _reserved = new(StringComparer.Ordinal);
    private volatile bool _disposing, _disposed;
    private int _registryVersion;

    /// <summary>
    /// Recent UTF-8 id-to-model lookups, in 8 slots picked by a cheap hash. The C API names the
    /// model by C string on every call, and decoding plus hashing it cost more than the rest of
    /// the dispatch. Entries are immutable and carry the registry version they were made at:
    /// any register or unregister bumps <see cref="_registryVersion"/> and so retires them all.
    /// </summary>
    private readonly LookupEntry?[] _lookups = new LookupEntry?[8];

    private sealed class LookupEntry(byte[] id, int version, ModelVersions models)
    {
        public readonly byte[] Id = id;
        public readonly int Version = version;
        public readonly ModelVersions Models = models;

        /// <summary>Whether the C string <paramref name="p"/> equals <see cref="Id"/>; reads no byte past its terminator.</summary>
        public bool Matches(byte* p)
        {
            var id = Id;
            for (int i = 0; i < id.Length; i++)
                if (p[i] != id[i]) return false; // id holds no NUL, so a shorter p stops here
            return p[id.Length] == 0;
        }
    }

    /// <summary>
    /// Most models registered at once; more are refused with INVALID_STATE. Every model holds a
    /// plugin session (threads, memory), so a host that registers on behalf of others caps it.
    /// </summary>
    public int MaxModels { get; init; } = int.MaxValue;

    /// <summary>
    /// How long unload, unregister and destroy wait for calls already running on a model (and
    /// admin calls for the gate of a serialised plugin) before they fail with BUSY, naming what
    /// still runs; the model then keeps serving. A plugin call that never returns must not hang
    /// its host. Default 30 s, as config <c>unload_timeout_ms</c>.
    /// </summary>
    public int UnloadTimeoutMs { get; init; } = CoreConfig.DefaultUnloadTimeoutMs;

    /// <summary>
    /// Where a plugin runs when its load does not say (<see cref="Isolation.IsolationOptions.Isolation"/>):
    /// config <c>default_isolation</c>, else <c>MLOS_DEFAULT_ISOLATION</c>, else
    /// <see cref="Isolation.PluginIsolation.Auto"/> (in process for the first-party C# plugins only).
    /// </summary>
    public Isolation.PluginIsolation DefaultIsolation { get; init; } = Isolation.IsolationOptions.EnvironmentDefault();

    public MlosCore() => _modelsBySpan = _models.GetAlternateLookup<ReadOnlySpan<char>>();

    /// <summary>A core set up from a JSON config (see <see cref="CoreConfig"/>); null or empty means none.</summary>
    public static MlosCore Create(string? configJson)
    {
        var config = CoreConfig.Parse(configJson);
        var core = new MlosCore { UnloadTimeoutMs = config.UnloadTimeoutMs, DefaultIsolation = config.DefaultIsolation ?? Isolation.IsolationOptions.EnvironmentDefault() };
        try
        {
            foreach (var p in config.Plugins) core.LoadPlugin(p.Path, p.Id, p.Config, options: p.Options);
            return core;
        }
        catch
        {
            core.Dispose();
            throw;
        }
    }

    public bool IsDisposed => _disposed;

    public IReadOnlyCollection<Plugin> Plugins => _plugins.Values.OrderBy(p => p.Id, StringComparer.Ordinal).ToArray();
    /// <summary>Every registered model, each version on its own, by id and then highest version first.</summary>
    public IReadOnlyCollection<Model> Models => _models.Values.SelectMany(v => v.All).OrderBy(m => m.Id, StringComparer.Ordinal).ToArray();

    /// <summary>
    /// Loads, checks and initialises a plugin; <paramref name="id"/> null means the plugin's own id.
    /// With <paramref name="deferInitialize"/>, initialize waits for the first model registered
    /// with the plugin (a framework is loaded only when a model needs it).
    /// </summary>
    public Plugin LoadPlugin(string? path, string? id = null, string? config = null, bool deferInitialize = false, Isolation.IsolationOptions? options = null) =>
        LoadPluginAt(NativePath.FromString(path), id, config, deferInitialize, options);

    /// <summary><see cref="LoadPlugin"/> with the path as the bytes the C API was given.</summary>
    public Plugin LoadPluginAt(NativePath? path, string? id = null, string? config = null, bool deferInitialize = false, Isolation.IsolationOptions? options = null)
    {
        PluginCalls.RefuseReentry("load_plugin");
        ThrowIfDisposed();
        if (Isolation.IsolationOptions.Resolve(options, DefaultIsolation, path) == Isolation.PluginIsolation.Process)
        {
            PluginLibrary.CheckFile(path); // the same answers as in process, and no host started to give them
            return LoadIsolated(path, id, config, deferInitialize, options ?? Isolation.IsolationOptions.Default);
        }
        var library = PluginLibrary.Open(path);
        var pluginId = id ?? PluginText.Read(library.Descriptor->PluginId)!;
        return Install(pluginId, library.Path.Text, config, deferInitialize, () =>
        {
            library.Claim(pluginId);
            return new InProcessBoundary(library);
        });
    }

    /// <summary>
    /// <see cref="LoadPluginAt"/> for a plugin in a host process (or several, with instances) of
    /// its own: the plugin's code, smi_plugin_init included, never runs in this process.
    /// </summary>
    private Plugin LoadIsolated(NativePath? path, string? id, string? config, bool deferInitialize, Isolation.IsolationOptions options)
    {
        if (id is not null) CheckId(id, "plugin id");
        PluginBoundary boundary = options.Instances > 1
            ? Isolation.InstancePool.Start(path, id, options, options.Instances)
            : Isolation.IsolatedBoundary.Start(path, id, options);
        var pluginPath = boundary is Isolation.InstancePool pool ? pool.Path : ((Isolation.IsolatedBoundary)boundary).Path;
        return Install(id ?? boundary.NativeId, pluginPath, config, deferInitialize, () => boundary, abandon: boundary.Close);
    }

    /// <summary>
    /// Makes a plugin of the boundary <paramref name="open"/> gives, under <paramref name="pluginId"/>,
    /// and initializes it (or defers that). On a failure the boundary is closed; one that fails
    /// before <paramref name="open"/> runs calls <paramref name="abandon"/> (a boundary made already).
    /// </summary>
    private Plugin Install(string pluginId, string path, string? config, bool deferInitialize, Func<PluginBoundary> open, Action? abandon = null)
    {
        try
        {
            CheckId(pluginId, "plugin id");
            Reserve("plugin:" + pluginId, () => _plugins.ContainsKey(pluginId)
                ? new MlosException(SmiStatus.AlreadyExists, $"a plugin with id '{pluginId}' is already loaded") : null);
        }
        catch
        {
            abandon?.Invoke();
            throw;
        }
        try
        {
            PluginBoundary boundary;
            try { boundary = open(); }
            catch
            {
                abandon?.Invoke();
                throw;
            }
            Plugin plugin;
            try
            {
                plugin = new Plugin(pluginId, path, boundary) { AdminTimeoutMs = UnloadTimeoutMs };
                if (deferInitialize) plugin.DeferInitialize(config);
                else plugin.Initialize(config);
            }
            catch
            {
                boundary.Close();
                throw;
            }
            lock (_registryLock) _plugins[pluginId] = plugin;
            return plugin;
        }
        finally { Unreserve("plugin:" + pluginId); }
    }

    public Plugin GetPlugin(string? id) =>
        id is not null && _plugins.TryGetValue(id, out var p) ? p
        : throw new MlosException(SmiStatus.NotFound, $"no plugin with id '{id}' is loaded");

    /// <summary>Registers a model with a plugin. <paramref name="optionsJson"/>: see <see cref="ModelOptions"/>.</summary>
    public Model RegisterModel(string? modelId, string? pluginId, string? path, string? optionsJson = null) =>
        RegisterModelAt(modelId, pluginId, NativePath.FromString(path), optionsJson);

    /// <summary><see cref="RegisterModel"/> with the path as the bytes the C API was given.</summary>
    public Model RegisterModelAt(string? modelId, string? pluginId, NativePath? path, string? optionsJson = null) =>
        Register(modelId, pluginId, path, optionsJson, publish: true, replacing: null);

    /// <summary>
    /// Registers a model with its plugin without making it reachable: no lookup finds it until
    /// <see cref="Publish"/> (or <see cref="Discard"/>). A repository loads and checks a new or
    /// changed model this way while the old one serves, so that a reload fails no request and a
    /// load that fails leaves what was serving as it was. Without <paramref name="replacing"/>
    /// its version must be a new one, as for <see cref="RegisterModel"/>.
    /// </summary>
    public Model PrepareModel(string? modelId, string? pluginId, string? path, string? optionsJson = null, Model? replacing = null) =>
        Register(modelId, pluginId, NativePath.FromString(path), optionsJson, publish: false, replacing);

    /// <summary>
    /// Makes a prepared model reachable: in the place of <paramref name="replacing"/> (the same id
    /// and version, which must still be registered) or as a version of its own. The replaced model
    /// is then unregistered, its running calls finishing first, and requests that reach it as it
    /// goes run on the replacement; should the unregister time out (BUSY), the replacement serves
    /// regardless and the old one is left out of reach, as BUSY says.
    /// </summary>
    public void Publish(Model prepared, Model? replacing = null)
    {
        PluginCalls.RefuseReentry("register_model");
        if (replacing is not null && (replacing.Id != prepared.Id || replacing.ServedVersion != prepared.ServedVersion))
            throw new MlosException(SmiStatus.InvalidParam, $"model '{prepared.Id}' version {prepared.ServedVersion} cannot take the place of model '{replacing.Id}' version {replacing.ServedVersion}");
        lock (_registryLock)
        {
            ThrowIfDisposed();
            if (!_prepared.ContainsKey(prepared))
                throw new MlosException(SmiStatus.InvalidState, $"model '{prepared.Id}' version {prepared.ServedVersion} is not a prepared model");
            var versions = _models.GetValueOrDefault(prepared.Id);
            var current = versions?.Find(prepared.ServedVersion);
            if (current != replacing)
                throw current is null
                    ? new MlosException(SmiStatus.NotFound, $"model '{prepared.Id}' version {prepared.ServedVersion} was unregistered meanwhile")
                    : new MlosException(SmiStatus.AlreadyExists, $"model '{prepared.Id}' version {prepared.ServedVersion} is already registered");
            var rest = replacing is null ? versions : versions!.Without(replacing);
            _models[prepared.Id] = rest is null ? ModelVersions.Of(prepared) : rest.With(prepared);
            _prepared.TryRemove(prepared, out _);
            Interlocked.Increment(ref _registryVersion);
        }
        if (replacing is null) return;
        replacing.Successor = prepared;
        Unregister(replacing, leftover: true);
    }

    /// <summary>
    /// Unregisters a model that <paramref name="successor"/> supersedes (a version its policy no
    /// longer serves): requests that reached it as it went run on the successor.
    /// </summary>
    public void Retire(Model model, Model successor)
    {
        PluginCalls.RefuseReentry("unregister_model");
        model.Successor = successor;
        Unregister(model, leftover: true);
    }

    /// <summary>
    /// Tries again to unregister the models that were replaced or retired while calls still ran
    /// on them past the unload timeout (out of reach since); the ones still left.
    /// </summary>
    public int UnregisterLeftovers()
    {
        foreach (var model in _leftovers.Keys)
        {
            try
            {
                Unregister(model);
                _leftovers.TryRemove(model, out _);
            }
            catch (MlosException e) when (e.Status == SmiStatus.Busy) { }
            catch (MlosException) { _leftovers.TryRemove(model, out _); } // unregistered after all, or forgotten by its plugin
        }
        return _leftovers.Count;
    }

    /// <summary>Unregisters a prepared model that will not be published.</summary>
    public void Discard(Model prepared)
    {
        PluginCalls.RefuseReentry("unregister_model");
        if (!_prepared.TryRemove(prepared, out _))
            throw new MlosException(SmiStatus.InvalidState, $"model '{prepared.Id}' version {prepared.ServedVersion} is not a prepared model");
        Unregister(prepared);
    }

    private Model Register(string? modelId, string? pluginId, NativePath? path, string? optionsJson, bool publish, Model? replacing)
    {
        PluginCalls.RefuseReentry("register_model");
        CheckId(modelId, "model id");
        var options = ModelOptions.Parse(optionsJson);
        Plugin plugin = null!;
        var servedVersion = options.Version ?? "1"; // as Model.ServedVersion
        // A prepared model may stand beside the version it will replace: its reservation is its own.
        var key = publish ? $"model:{modelId}\0{servedVersion}" : $"model:{modelId}\0{servedVersion}\0{Guid.NewGuid()}";
        Reserve(key, () =>
        {
            plugin = GetPlugin(pluginId);
            // A plain registration takes a new id: the C API and the register route name models by
            // id alone, so a second version under one id comes only by prepare and publish (a
            // repository). A prepared one may be a new version of a registered id.
            if (replacing is null && _models.TryGetValue(modelId!, out var versions) && (publish || versions.Find(servedVersion) is not null))
                return new MlosException(SmiStatus.AlreadyExists, publish
                    ? $"a model with id '{modelId}' is already registered"
                    : $"model '{modelId}' version {servedVersion} is already registered");
            if (_models.Values.Sum(v => v.All.Count) + _prepared.Count + _reserved.Count(r => r.StartsWith("model:", StringComparison.Ordinal)) >= MaxModels)
                return new MlosException(SmiStatus.InvalidState, $"{MaxModels} models are registered, the most this core takes: unregister one first");
            if (options.TimeoutMs > 0 && !plugin.HasDeadlineInfer)
                return new MlosException(SmiStatus.NotSupported, $"model '{modelId}': timeout_ms needs a plugin that can stop a run at a deadline (SMI 1.2 infer_with_deadline), which plugin '{plugin.Id}' (SMI {SmiVersion.Format(plugin.SmiVersion)}) lacks");
            if (options.CallTimeoutMs > 0 && plugin.Isolation != Isolation.PluginIsolation.Process)
                return new MlosException(SmiStatus.NotSupported, $"model '{modelId}': call_timeout_ms needs a plugin in a host process of its own (\"isolation\": \"process\"), and plugin '{plugin.Id}' runs in this one, where a running call cannot be stopped");
            if (options.Batching is { Automatic: false } && !plugin.HasTypedInfer)
                return new MlosException(SmiStatus.NotSupported, $"model '{modelId}': dynamic batching needs typed infer, which plugin '{plugin.Id}' lacks");
            return null;
        });
        try
        {
            plugin.EnsureInitialized();
            var handles = new nint[options.Instances];
            using (var metadata = new NativeMetadata(modelId!, options.Framework, options.Version, path, options.Config))
            {
                int made = 0;
                try
                {
                    while (made < handles.Length)
                    {
                        handles[made] = plugin.Register(metadata.Pointer);
                        made++; // registered: unregistered below should anything after fail
                        if (options.CallTimeoutMs > 0) plugin.LimitCalls(handles[made - 1], options.CallTimeoutMs);
                    }
                }
                catch
                {
                    for (int k = 0; k < made; k++)
                    {
                        try { plugin.Unregister(handles[k]); }
                        catch (MlosException) { /* the registration's own failure is the one to report */ }
                    }
                    throw;
                }
            }
            var model = new Model(modelId!, plugin, handles, path, options.Framework, options.Version, options.Batching) { TimeoutMs = options.TimeoutMs, MaxRows = options.MaxRows, OptionalInputs = options.OptionalInputs, Reshape = options.Reshape, DeclaredShapes = options.DeclaredShapes };
            lock (_registryLock)
            {
                if (!publish) _prepared[model] = 0;
                else
                {
                    _models[modelId!] = _models.TryGetValue(modelId!, out var versions) ? versions.With(model) : ModelVersions.Of(model);
                    Interlocked.Increment(ref _registryVersion);
                }
            }
            return model;
        }
        finally { Unreserve(key); }
    }

    /// <summary>
    /// Reserves <paramref name="key"/> for a registration that runs plugin code outside the
    /// registry lock; <paramref name="refusal"/> runs under the lock and may refuse it.
    /// </summary>
    private void Reserve(string key, Func<MlosException?> refusal)
    {
        lock (_registryLock)
        {
            ThrowIfDisposed();
            if (refusal() is { } e) throw e;
            if (!_reserved.Add(key))
                throw new MlosException(SmiStatus.AlreadyExists, $"{key.Replace(":", " '")}' is being registered by another call");
        }
    }

    private void Unreserve(string key)
    {
        lock (_registryLock) _reserved.Remove(key);
    }

    /// <summary>
    /// The model registered as <paramref name="id"/>: its highest loaded version, else its highest
    /// (see <see cref="ModelVersions.Current"/>); none once destroy has begun (INVALID_STATE).
    /// </summary>
    public Model GetModel(string? id) => GetVersions(id).Current;

    /// <summary>One version of a model (null: as <see cref="GetModel(string?)"/>); NOT_FOUND naming the versions there are.</summary>
    public Model GetModel(string? id, string? version) => GetVersions(id).Get(version);

    /// <summary>Every registered version of a model, highest first.</summary>
    public ModelVersions GetVersions(string? id)
    {
        ThrowIfDisposed();
        return id is not null && _models.TryGetValue(id, out var v) ? v
            : throw new MlosException(SmiStatus.NotFound, $"no model with id '{id}' is registered");
    }

    /// <summary>Looks a model up without allocating a string (the inference path).</summary>
    public Model GetModel(ReadOnlySpan<char> id) => GetVersions(id).Current;

    private ModelVersions GetVersions(ReadOnlySpan<char> id)
    {
        ThrowIfDisposed();
        return _modelsBySpan.TryGetValue(id, out var v) ? v
            : throw new MlosException(SmiStatus.NotFound, $"no model with id '{id}' is registered");
    }

    /// <summary>Looks a model up by its UTF-8 id (the C API's path) through the lookup cache.</summary>
    public Model GetModel(ReadOnlySpan<byte> utf8Id)
    {
        int slot = Slot(utf8Id.IsEmpty ? (byte)0 : utf8Id[0], utf8Id.Length > 1 ? utf8Id[1] : (byte)0);
        int version = Volatile.Read(ref _registryVersion);
        var entry = Volatile.Read(ref _lookups[slot]);
        if (entry is not null && entry.Version == version && utf8Id.SequenceEqual(entry.Id))
        {
            ThrowIfDisposed();
            return entry.Models.Current;
        }
        return Lookup(utf8Id, slot, version);
    }

    /// <summary>
    /// Looks a model up by a NUL-terminated UTF-8 id: the C API's inference path. A hit compares
    /// the id in one pass, without measuring it first.
    /// </summary>
    public Model GetModel(byte* id)
    {
        int slot = Slot(id[0], id[0] != 0 ? id[1] : (byte)0);
        int version = Volatile.Read(ref _registryVersion);
        var entry = Volatile.Read(ref _lookups[slot]);
        if (entry is not null && entry.Version == version && entry.Matches(id))
        {
            ThrowIfDisposed();
            return entry.Models.Current;
        }
        return Lookup(System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(id), slot, version);
    }

    private static int Slot(byte first, byte second) => (first * 31 + second) & 7;

    private Model Lookup(ReadOnlySpan<byte> utf8Id, int slot, int version)
    {
        if (utf8Id.Length > 4 * MaxIdLength)
            throw new MlosException(SmiStatus.InvalidParam, $"model id is longer than {MaxIdLength} characters");
        Span<char> chars = stackalloc char[utf8Id.Length];
        var models = GetVersions(chars[..StrictUtf8.Decode(utf8Id, chars, "model id")]);
        Volatile.Write(ref _lookups[slot], new LookupEntry(utf8Id.ToArray(), version, models));
        return models.Current;
    }

    /// <summary>Loads every registered version of a model; loading a loaded model is a no-op.</summary>
    public void LoadModel(string? id)
    {
        PluginCalls.RefuseReentry("load_model");
        foreach (var model in GetVersions(id).All) Load(model);
    }

    /// <summary>Loads one version of a model; loading a loaded model is a no-op.</summary>
    public void LoadModel(Model model)
    {
        PluginCalls.RefuseReentry("load_model");
        Load(model);
    }

    private void Load(Model model)
    {
        var id = model.Id;
        lock (model.AdminLock)
        {
            switch (model.State)
            {
                case ModelState.Loaded: return;
                case ModelState.Unregistering or ModelState.Unregistered: throw new MlosException(SmiStatus.NotFound, $"model '{id}' was unregistered");
            }
            model.SetState(ModelState.Loading);
            try
            {
                model.LoadInstances();
                try
                {
                    model.CacheSpecs(); // refuses a reshape the model's specs do not fit
                    model.StartBatching();
                }
                catch
                {
                    model.UnloadInstances();
                    throw;
                }
            }
            catch
            {
                model.ForgetSpecs();
                model.SetState(ModelState.Registered);
                throw;
            }
            model.SetState(ModelState.Loaded);
        }
    }

    /// <summary>
    /// Unloads a model after the requests running on it finish; new ones fail with BUSY meanwhile.
    /// If they are still running after <see cref="UnloadTimeoutMs"/>, it fails with BUSY and the
    /// model stays loaded.
    /// </summary>
    public void UnloadModel(string? id)
    {
        PluginCalls.RefuseReentry("unload_model");
        foreach (var model in GetVersions(id).All) Unload(model);
    }

    /// <summary>Unloads one version of a model (see <see cref="UnloadModel(string?)"/>).</summary>
    public void UnloadModel(Model model)
    {
        PluginCalls.RefuseReentry("unload_model");
        Unload(model);
    }

    private void Unload(Model model)
    {
        lock (model.AdminLock)
        {
            if (model.State != ModelState.Loaded) return;
            StopServing(model, ModelState.Unloading);
            MlosException? partial;
            try { partial = model.UnloadInstances(); }
            catch
            {
                model.SetState(ModelState.Loaded); // the plugin kept it: it still serves
                model.StartBatching();
                throw;
            }
            model.SetState(ModelState.Registered);
            model.ForgetSpecs(); // a reload reads them again: the file may have changed
            if (partial is not null) throw partial; // another instance's failure: unloaded all the same
        }
    }

    /// <summary>
    /// Unloads (if needed) and forgets a model. Nothing reaches its handle once this has begun;
    /// calls already running are waited for, at most <see cref="UnloadTimeoutMs"/>: then it
    /// fails with BUSY and the model stays as it was.
    /// </summary>
    public void UnregisterModel(string? id)
    {
        PluginCalls.RefuseReentry("unregister_model");
        foreach (var model in GetVersions(id).All) Unregister(model);
    }

    /// <summary>Unregisters one version of a model (see <see cref="UnregisterModel(string?)"/>).</summary>
    public void UnregisterModel(Model model)
    {
        PluginCalls.RefuseReentry("unregister_model");
        Unregister(model);
    }

    /// <param name="leftover">A model already out of reach: kept in <see cref="_leftovers"/> should it time out.</param>
    private void Unregister(Model model, bool leftover = false)
    {
        try { UnregisterOnce(model); }
        catch (MlosException e) when (leftover && e.Status == SmiStatus.Busy)
        {
            _leftovers[model] = 0;
            throw;
        }
        _leftovers.TryRemove(model, out _);
    }

    private void UnregisterOnce(Model model)
    {
        lock (model.AdminLock)
        {
            if (model.State is ModelState.Unregistering or ModelState.Unregistered)
                throw new MlosException(SmiStatus.NotFound, $"no model with id '{model.Id}' is registered");
            bool loaded = model.State == ModelState.Loaded;
            StopServing(model, ModelState.Unregistering);
            MlosException? unloadFailure = null;
            if (loaded)
            {
                try { unloadFailure = model.UnloadInstances(); }
                catch (MlosException e) when (e.Status == SmiStatus.Busy)
                {
                    // The gate stayed taken: nothing was unloaded, so nothing is unregistered.
                    model.SetState(ModelState.Loaded);
                    model.StartBatching();
                    throw;
                }
                catch (MlosException e) { unloadFailure = e; }
            }
            model.SetState(ModelState.Unregistered);
            lock (_registryLock)
            {
                _prepared.TryRemove(model, out _);
                if (_models.TryGetValue(model.Id, out var versions))
                {
                    if (versions.Without(model) is { } rest) _models[model.Id] = rest;
                    else _models.TryRemove(model.Id, out _);
                }
                Interlocked.Increment(ref _registryVersion);
            }
            model.UnregisterInstances();
            if (unloadFailure is not null) throw unloadFailure;
        }
    }

    /// <summary>
    /// Stops the batcher (its queued requests still run) and drains the model into
    /// <paramref name="next"/>; on a timeout the model is put back as it was and BUSY thrown.
    /// </summary>
    private void StopServing(Model model, ModelState next)
    {
        var before = model.State;
        try
        {
            model.StopBatching(UnloadTimeoutMs);
            model.Drain(next, UnloadTimeoutMs);
        }
        catch (MlosException)
        {
            model.SetState(before);
            if (before == ModelState.Loaded && model.Batcher is null) model.StartBatching();
            throw;
        }
    }

    /// <summary>
    /// Untyped inference with the caller's buffers passed straight through. On BUFFER_TOO_SMALL
    /// the plugin has set <c>*outputSize</c> to what it needs.
    /// </summary>
    public void Inference(Model model, void* input, nuint inputSize, void* output, nuint* outputSize)
    {
        while (true)
        {
            var call = new InferenceCall(input, inputSize, output, outputSize);
            SmiStatus status;
            try { status = model.RunRequest(ref call); }
            catch (MlosException e) when (Successor(model, e) is { } next)
            {
                model = next;
                continue;
            }
            if (status != SmiStatus.Success) throw model.Plugin.Failure(status, $"inference on model '{model.Id}'");
            return;
        }
    }

    /// <summary>
    /// Where a request that <paramref name="model"/> refused goes instead: the model that took its
    /// place, when it was retired or replaced; null otherwise (other failures are the answer).
    /// The request never reached the plugin, so running it there answers it once.
    /// </summary>
    private static Model? Successor(Model model, MlosException e) => e.Refused ? model.Successor : null;

    /// <summary>
    /// Typed inference under smi_spec.h's output ownership rule; through the model's dynamic
    /// batcher when it has one (the caller's thread waits for its batch). The inputs are checked
    /// (<see cref="InferInputs.Check"/>) before any plugin or batcher sees them.
    /// </summary>
    public Batching.InferTiming Infer(Model model, SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs) =>
        Infer(model, inputs, numInputs, outputs, numOutputs, OutputSelection.All);

    /// <summary>
    /// <see cref="Infer(Model, SmiTensor*, nuint, SmiTensor*, nuint*)"/> of the outputs in
    /// <paramref name="selection"/> only (the output slots must be empty): those come back, first,
    /// and the plugin computes no more than it must where it can (SMI 1.3).
    /// </summary>
    public Batching.InferTiming Infer(Model model, SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs, in OutputSelection selection)
    {
        while (true)
        {
            try { return InferOnce(model, inputs, numInputs, outputs, numOutputs, selection); }
            catch (MlosException e) when (Successor(model, e) is { } next) { model = next; }
        }
    }

    private Batching.InferTiming InferOnce(Model model, SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs, in OutputSelection selection)
    {
        InferInputs.Check(model, inputs, numInputs, selection);
        ulong deadline = model.DeadlineFromNow();
        // From inside a plugin, never through a batcher, whose leader may be this very thread;
        // Model.Run refuses what would deadlock (a serialised plugin).
        if (PluginCalls.Inside is null && model.PickBatcher() is { } batcher) return batcher.Infer(inputs, numInputs, outputs, numOutputs, deadline, selection);
        return RunTyped(model, inputs, numInputs, outputs, numOutputs, deadline, selection);
    }

    /// <summary>
    /// <see cref="Infer"/> for asynchronous callers: with a dynamic batcher, the request waits in
    /// the queue without holding a thread; the tensors and <paramref name="numOutputs"/> must stay
    /// valid (pinned, unmoved) until the task completes. Without one, it runs synchronously.
    /// </summary>
    public ValueTask<Batching.InferTiming> InferAsync(Model model, SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs, in OutputSelection selection = default)
    {
        while (true)
        {
            try { return InferOnceAsync(model, inputs, numInputs, outputs, numOutputs, selection); }
            catch (MlosException e) when (Successor(model, e) is { } next) { model = next; }
        }
    }

    private ValueTask<Batching.InferTiming> InferOnceAsync(Model model, SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs, in OutputSelection selection)
    {
        InferInputs.Check(model, inputs, numInputs, selection);
        ulong deadline = model.DeadlineFromNow();
        // Batching is only started for plugins with typed infer; from inside a plugin call, never
        // through a batcher (see Infer).
        if (PluginCalls.Inside is null && model.PickBatcher() is { } batcher)
            return batcher.InferAsync(inputs, numInputs, outputs, numOutputs, deadline, selection);
        return new ValueTask<Batching.InferTiming>(RunTyped(model, inputs, numInputs, outputs, numOutputs, deadline, selection));
    }

    private static Batching.InferTiming RunTyped(Model model, SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs, ulong deadline, in OutputSelection selection)
    {
        if (!model.Plugin.HasTypedInfer)
            throw new MlosException(SmiStatus.NotSupported,
                $"plugin '{model.Plugin.Id}' (SMI {SmiVersion.Format(model.Plugin.SmiVersion)}) has no typed infer entry; use untyped inference");
        var call = new InferCall(inputs, numInputs, outputs, numOutputs, deadline, selection, model.RowsOf(inputs, numInputs));
        var status = model.RunRequest(ref call);
        if (status != SmiStatus.Success) throw model.Plugin.Failure(status, $"infer on model '{model.Id}'");
        return new Batching.InferTiming(0, 1);
    }

    /// <summary>Passes resource requests for a model to its plugin (allocate_resources).</summary>
    public void AllocateResources(string? id, SmiResourceReq* requirements, nuint count)
    {
        PluginCalls.RefuseReentry("allocate_resources");
        var model = GetModel(id);
        lock (model.AdminLock) model.OnHandle((plugin, handle) => { plugin.Allocate(handle, requirements, count); return 0; });
    }

    /// <summary>Gives back what <see cref="AllocateResources"/> took (deallocate_resources).</summary>
    public void DeallocateResources(string? id)
    {
        PluginCalls.RefuseReentry("deallocate_resources");
        var model = GetModel(id);
        lock (model.AdminLock) model.OnHandle((plugin, handle) => { plugin.Deallocate(handle); return 0; });
    }

    /// <summary>
    /// Unregisters every model and cleans every plugin up; the plugins' libraries become free
    /// for another core. When calls on some model are still running after
    /// <see cref="UnloadTimeoutMs"/>, it fails with BUSY naming them: the core refuses new work
    /// but stays, and a later call finishes the job.
    /// </summary>
    public void Dispose()
    {
        PluginCalls.RefuseReentry("destroy");
        lock (_registryLock)
        {
            if (_disposed) return;
            _disposing = true;
        }
        long deadline = Environment.TickCount64 + UnloadTimeoutMs;
        while (true) // registrations under way finish (or fail) before the plugins go
        {
            lock (_registryLock)
                if (_reserved.Count == 0) break;
            if (Environment.TickCount64 > deadline)
                throw new MlosException(SmiStatus.Busy, $"the core is not destroyed: a registration is still running after {UnloadTimeoutMs} ms");
            Thread.Sleep(1);
        }
        var busy = new List<string>();
        foreach (var model in _models.Values.SelectMany(v => v.All).Concat(_prepared.Keys).Concat(_leftovers.Keys))
        {
            try { Unregister(model); }
            catch (MlosException e) when (e.Status == SmiStatus.Busy) { busy.Add(e.Message); }
            catch (MlosException) { /* the model is forgotten either way; nothing to report to at teardown */ }
        }
        if (busy.Count > 0)
            throw new MlosException(SmiStatus.Busy, $"the core is not destroyed: {string.Join("; ", busy)}");
        lock (_registryLock)
        {
            if (_disposed) return;
            _disposed = true;
        }
        foreach (var plugin in _plugins.Values)
        {
            plugin.Cleanup();
            plugin.Close();
        }
        _plugins.Clear();
    }

    private void ThrowIfDisposed()
    {
        if (_disposing) throw new MlosException(SmiStatus.InvalidState, "the core has been destroyed");
    }

    private static void CheckId(string? id, string what)
    {
        if (string.IsNullOrWhiteSpace(id))
            throw new MlosException(SmiStatus.InvalidParam, $"{what} must not be empty");
        if (id.Length > MaxIdLength)
            throw new MlosException(SmiStatus.InvalidParam, $"{what} is longer than {MaxIdLength} characters");
    }
}
